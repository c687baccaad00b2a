// What the portal sends to the clinic's practice system (bookings, appointment answers, refill requests,
// completed forms) and how it answered. Items the system could not match to a client or pet are flagged
// for staff: fix the match there, then retry; or dismiss (a booking is then refused and the client told).
import { useEffect, useRef, useState } from "preact/hooks";
import { problem, type Schemas } from "../api";
import { staffApi } from "./staff";

type Item = Schemas["OutboundItemPublic"];
type Status = Schemas["OutboundStatus"];

const KINDS: Record<string, string> = {
  booking: "Online booking",
  appointment_answer: "Appointment answer",
  refill_request: "Refill request",
  form_submission: "Form submission",
};
const STATUSES: Record<Status, string> = {
  flagged: "Flagged for staff",
  pending: "Waiting for the practice system",
  acked: "Taken by the practice system",
  nacked: "Refused",
};
const REASONS: Record<string, string> = {
  client_not_matched: "Client not matched in the practice system",
  patient_not_matched: "Pet not matched in the practice system",
  slot_unavailable: "The time is no longer free",
  invalid: "Refused as invalid",
  pims_error: "Practice system error",
  other: "Other",
};

const when = (iso: string) => new Date(iso).toLocaleString();

/** A line saying what the item asks for, from its payload. */
function summary(item: Item): string {
  const p = item.payload as Record<string, unknown>;
  const text = (key: string) => (typeof p[key] === "string" ? (p[key] as string) : null);
  const pet = text("patient_id") ? `pet ${text("patient_id")}` : null;
  const at = text("starts_at") ? when(text("starts_at")!) : null;
  if (item.kind === "booking") return [at, text("appointment_type"), pet].filter(Boolean).join(" · ");
  if (item.kind === "appointment_answer") {
    return [`${text("answer") === "cancel" ? "Cancel" : "Confirm"} appointment ${text("appointment_id") ?? ""}`, at, pet].filter(Boolean).join(" · ");
  }
  return pet ?? "";
}

export function OutboundScreen() {
  const [status, setStatus] = useState<Status | "">("");
  const [items, setItems] = useState<Item[] | null>(null);
  const [error, setError] = useState("");
  const [done, setDone] = useState("");
  const load = async (filter: Status | "" = status) => {
    const { data, error } = await staffApi.GET("/clinic/v1/outbound", { params: { query: filter ? { status: filter } : {} } });
    if (!data) return setError(problem(error, "The outbound queue could not be loaded."));
    setError("");
    // Flagged first (they need staff), then newest first as the API lists them.
    setItems([...data.items].sort((a, b) => Number(b.status === "flagged") - Number(a.status === "flagged")));
  };
  useEffect(() => {
    load(status);
  }, [status]);

  async function act(item: Item, action: "retry" | "dismiss") {
    const params = { params: { path: { item_id: item.item_id } } };
    const { data, error } = action === "retry"
      ? await staffApi.POST("/clinic/v1/outbound/{item_id}/retry", params)
      : await staffApi.POST("/clinic/v1/outbound/{item_id}/dismiss", params);
    if (!data) return setError(problem(error, "That did not work. Please reload and try again."));
    setDone(action === "retry"
      ? `${KINDS[item.kind] ?? item.kind} for client ${item.client_id} sent again to the practice system.`
      : `${KINDS[item.kind] ?? item.kind} for client ${item.client_id} dismissed.`);
    await load();
  }

  const flagged = items?.filter((i) => i.status === "flagged").length ?? 0;
  return (
    <>
      <h1>Outbound queue</h1>
      <p class="hint">
        What the portal sends to your practice system, and its answers. An item the system could not match
        to a client or pet is flagged: fix the match in the practice system, then retry it; or dismiss it
        (a booking is then refused and the client told).
      </p>
      <label for="outbound-status">Show</label>
      <select id="outbound-status" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value as Status | "")}>
        <option value="">All (flagged first)</option>
        {(Object.keys(STATUSES) as Status[]).map((s) => <option value={s}>{STATUSES[s]}</option>)}
      </select>
      <p role="status">{done}</p>
      {error && <p class="error" role="alert">{error}</p>}
      {items === null ? <p role="status">Loading…</p> : items.length === 0 ? (
        <p class="empty">Nothing here.</p>
      ) : (
        <>
          {status === "" && <p>{flagged === 1 ? "1 item needs you." : `${flagged} items need you.`}</p>}
          <ul class="cards" aria-label="Outbound items">
            {items.map((item) => <OutboundCard key={item.item_id} item={item} onAct={act} />)}
          </ul>
        </>
      )}
    </>
  );
}

function OutboundCard({ item, onAct }: { item: Item; onAct: (item: Item, action: "retry" | "dismiss") => Promise<void> }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const keep = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) keep.current?.focus();
  }, [asking]);
  const id = `item-${item.item_id}`;
  const run = async (action: "retry" | "dismiss") => {
    setBusy(true);
    await onAct(item, action);
    setBusy(false);
    setAsking(false);
  };
  return (
    <li class={item.status === "flagged" ? "card request flagged" : "card request"}>
      <strong id={id}>{KINDS[item.kind] ?? item.kind} · client {item.client_id}</strong>
      <span class="tag">{STATUSES[item.status] ?? item.status}</span>
      {summary(item) && <span>{summary(item)}</span>}
      {item.reason && <span>Reason: {REASONS[item.reason] ?? item.reason}{item.reason_text ? ` — “${item.reason_text}”` : ""}</span>}
      <span>Sent <time dateTime={item.created_at}>{when(item.created_at)}</time>
        {item.answered_at && <>, answered <time dateTime={item.answered_at}>{when(item.answered_at)}</time></>}
        {item.pims_reference && <> (reference {item.pims_reference})</>}
      </span>
      {item.status === "flagged" && (asking ? (
        <div class="confirm-box" role="group" aria-labelledby={`${id}-ask`}>
          <p id={`${id}-ask`}>Dismiss this item? It counts as refused{item.kind === "booking" ? ": the time is freed and the client told" : ""}.</p>
          <div class="actions">
            <button type="button" class="danger" disabled={busy} onClick={() => run("dismiss")}>Dismiss it</button>
            <button type="button" class="secondary" ref={keep} onClick={() => setAsking(false)}>Keep it</button>
          </div>
        </div>
      ) : (
        <div class="actions">
          <button type="button" disabled={busy} aria-describedby={id} onClick={() => run("retry")}>Retry</button>
          <button type="button" class="secondary" disabled={busy} aria-describedby={id} onClick={() => setAsking(true)}>Dismiss</button>
        </div>
      ))}
    </li>
  );
}
