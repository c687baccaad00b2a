// Book a visit online, at a clinic that takes direct bookings: the clinic (if the parent has several),
// the pet, a free time (held for the parent for a few minutes while they finish; let go when they pick
// another or leave), an optional note; then the booking waits for the clinic's system to take it.
// A clinic that takes requests instead sends the parent to the pet page's appointment request.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, currentSession, problem, type Schemas } from "../api";
import { clinicTime } from "./Appointments";

type Slot = Schemas["SlotPublic"];
type Hold = Schemas["HoldPublic"];
type Booking = Schemas["BookingPublic"];
type Pet = Schemas["PetPublic"];
type Held = { hold: Hold; deadline: number };

const SENT = "Sent to the clinic — waiting for confirmation";
const REASONS: Record<string, string> = {
  slot_unavailable: "that time is no longer free at the clinic",
  client_not_matched: "the clinic could not match it to your details",
  patient_not_matched: "the clinic could not match it to your pet's record",
  invalid: "the clinic's system could not accept it",
  pims_error: "the clinic's system could not take it just now",
  other: "the clinic could not take it",
};

function bookingStatus(b: Booking): string {
  if (b.status === "pending") return SENT;
  if (b.status === "confirmed") return "Confirmed";
  if (b.status === "needs_staff") return "The clinic will contact you about this booking";
  return `Not booked: ${REASONS[b.reason ?? "other"] ?? REASONS.other}. Please choose another time.`;
}

const DAY: Intl.DateTimeFormatOptions = { weekday: "long", day: "numeric", month: "long" };
const DAY_KEY: Intl.DateTimeFormatOptions = { year: "numeric", month: "2-digit", day: "2-digit" };
const TIME: Intl.DateTimeFormatOptions = { hour: "2-digit", minute: "2-digit" };
const FULL: Intl.DateTimeFormatOptions = { ...DAY, ...TIME };

/** Free times by day, as the clinic's calendar has them (the slots come soonest first). */
function byDay(slots: Slot[], timeZone: string) {
  const days: { key: string; label: string; slots: Slot[] }[] = [];
  for (const slot of slots) {
    const key = clinicTime(slot.starts_at, timeZone, DAY_KEY);
    let day = days[days.length - 1];
    if (!day || day.key !== key) days.push((day = { key, label: clinicTime(slot.starts_at, timeZone, DAY), slots: [] }));
    day.slots.push(slot);
  }
  return days;
}

/** Seconds left until `deadline` (a local clock time), ticking while there is one. */
function useSecondsLeft(deadline: number | null): number | null {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (deadline === null) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [deadline]);
  return deadline === null ? null : Math.max(0, Math.round((deadline - now) / 1000));
}

/** Let go of a hold; `leaving`: the page is closing, so the request must outlive it. */
function release(hold: Hold, leaving = false): void {
  if (leaving) {
    const token = currentSession()?.access_token;
    fetch(`/api/v1/booking/holds/${hold.hold_id}?clinic_id=${encodeURIComponent(hold.clinic_id)}`, {
      method: "DELETE",
      keepalive: true,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    }).catch(() => undefined);
    return;
  }
  api.DELETE("/api/v1/booking/holds/{hold_id}", {
    params: { path: { hold_id: hold.hold_id }, query: { clinic_id: hold.clinic_id } },
  }).catch(() => undefined);
}

function initialClinic(clinics: string[]): string {
  const asked = new URLSearchParams(location.search).get("clinic");
  if (asked && clinics.includes(asked)) return asked;
  return currentSession()?.clinic_id ?? clinics[0] ?? "";
}

export function Book() {
  const clinics = [...new Set((currentSession()?.clients ?? []).map((c) => c.clinic_id))];
  const [clinicId, setClinicId] = useState(() => initialClinic(clinics));
  const [pets, setPets] = useState<Pet[] | null>(null);
  const [patientId, setPatientId] = useState("");
  const [offer, setOffer] = useState<Schemas["SlotsPublic"] | "requests" | null>(null);
  const [zones, setZones] = useState<Record<string, string>>({});
  const [bookings, setBookings] = useState<Booking[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [held, setHeld] = useState<Held | null>(null);
  const [holdNote, setHoldNote] = useState("");
  const [note, setNote] = useState("");
  const [sent, setSent] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const heldRef = useRef(held);
  heldRef.current = held;
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  const holds = useRef<Promise<void>>(Promise.resolve());
  const sentRef = useRef<HTMLParagraphElement>(null);
  const secondsLeft = useSecondsLeft(held ? held.deadline : null);

  const clinicRef = useRef(clinicId);
  clinicRef.current = clinicId;

  const loadBookings = () =>
    api.GET("/api/v1/booking/bookings").then(({ data }) => setBookings(data ? data.bookings : []));
  const loadSlots = async (clinic: string) => {
    const { data, error, response } = await api.GET("/api/v1/booking/slots", { params: { query: { clinic_id: clinic, days: 14 } } });
    if (clinic !== clinicRef.current) return;
    if (data) {
      setOffer(data);
      setZones((zones) => ({ ...zones, [clinic]: data.timezone }));
    } else if (response.status === 409) setOffer("requests");
    else setError(problem(error, "The free times could not be loaded. Please try again."));
  };

  useEffect(() => {
    api.GET("/api/v1/pets").then(({ data, error }) => (data ? setPets(data.pets) : setError(problem(error))));
    loadBookings();
    // Leaving the screen (or the page) lets the held time go for others at once.
    const leave = () => heldRef.current && release(heldRef.current.hold, true);
    window.addEventListener("pagehide", leave);
    return () => {
      window.removeEventListener("pagehide", leave);
      if (heldRef.current) release(heldRef.current.hold);
    };
  }, []);

  // Bookings waiting for the clinic's system: looked at again now and then while the screen is open.
  const waiting = bookings?.some((b) => b.status === "pending") ?? false;
  useEffect(() => {
    if (!waiting) return;
    const timer = setInterval(loadBookings, 15_000);
    return () => clearInterval(timer);
  }, [waiting]);

  useEffect(() => {
    if (heldRef.current) release(heldRef.current.hold);
    setHeld(null);
    setSelected(null);
    setOffer(null);
    setError("");
    loadSlots(clinicId);
  }, [clinicId]);

  const petsHere = (pets ?? []).filter((p) => p.clinic_id === clinicId);
  useEffect(() => {
    if (!petsHere.some((p) => p.patient_id === patientId)) setPatientId(petsHere[0]?.patient_id ?? "");
  }, [pets, clinicId]);

  const clinicName = (id: string) => (pets ?? []).find((p) => p.clinic_id === id)?.clinic_name ?? id;
  const petName = (id: string) => (pets ?? []).find((p) => p.patient_id === id)?.name ?? "Your pet";

  /** Hold the picked time. One hold request at a time, in order: the clinic keeps the parent's latest. */
  function pick(slot: Slot) {
    setSelected(slot.slot_id);
    setError("");
    setSent("");
    if (heldRef.current?.hold.slot_id === slot.slot_id) return;
    setHoldNote("Holding this time for you…");
    holds.current = holds.current.then(async () => {
      if (selectedRef.current !== slot.slot_id) return; // another time was picked meanwhile
      const { data, error, response } = await api.POST("/api/v1/booking/holds", { body: { clinic_id: clinicId, slot_id: slot.slot_id } });
      if (data) {
        // The clock of the answer (not this device's) says how long the hold lasts.
        const served = Date.parse(response.headers.get("date") ?? "");
        const lasts = Date.parse(data.expires_at) - (Number.isNaN(served) ? Date.now() : served);
        setHeld({ hold: data, deadline: Date.now() + lasts });
        setHoldNote(`This time is held for you for ${Math.round(lasts / 60_000)} minutes while you finish.`);
        return;
      }
      if (selectedRef.current === slot.slot_id) setSelected(null);
      setHoldNote("");
      if (heldRef.current) release(heldRef.current.hold);
      setHeld(null);
      if (response.status === 409 && (error as { field?: string } | undefined)?.field === "clinic_id") return setOffer("requests");
      setError(response.status === 409 || response.status === 404
        ? "Someone else has just taken that time. Please choose another one."
        : problem(error, "That time could not be held. Please try again."));
      await loadSlots(clinicId);
    });
  }

  async function book(event: Event) {
    event.preventDefault();
    if (!selected) return setError("Choose a time first.");
    if (!patientId) return setError("Choose which pet the visit is for.");
    setBusy(true);
    setError("");
    const { data, error, response } = await api.POST("/api/v1/booking/bookings", {
      body: { clinic_id: clinicId, slot_id: selected, patient_id: patientId, note: note.trim() || null },
    });
    setBusy(false);
    const field = (error as { field?: string } | undefined)?.field;
    if (data) {
      setHeld(null); // the hold became the booking
      setSelected(null);
      setHoldNote("");
      setNote("");
      const zone = offer && offer !== "requests" ? offer.timezone : undefined;
      setSent(`${SENT}: ${petName(data.patient_id)}, ${clinicTime(data.slot.starts_at, zone, FULL)}.`);
      sentRef.current?.focus();
    } else if (response.status === 409 && field === "clinic_id") {
      setOffer("requests");
      return;
    } else if (response.status === 409 || (response.status === 404 && field === "slot_id")) {
      setHeld(null);
      setSelected(null);
      setHoldNote("");
      setError("Someone else has just booked that time. Please choose another one.");
    } else {
      return setError(problem(error, "Your booking was not sent. Please try again."));
    }
    await Promise.all([loadSlots(clinicId), loadBookings()]);
  }

  const zone = offer && offer !== "requests" ? offer.timezone : undefined;
  const chosen = offer && offer !== "requests" ? offer.slots.find((s) => s.slot_id === selected) : undefined;
  const heldNow = held && held.hold.slot_id === selected;
  return (
    <>
      <p><a href="/">← Home</a></p>
      <h1>Book a visit</h1>
      <form onSubmit={book}>
        {clinics.length > 1 && (
          <>
            <label for="book-clinic">Clinic</label>
            <select id="book-clinic" value={clinicId} onChange={(e) => setClinicId((e.target as HTMLSelectElement).value)}>
              {clinics.map((c) => <option value={c}>{clinicName(c)}</option>)}
            </select>
          </>
        )}
        {pets !== null && petsHere.length > 0 && offer !== "requests" && (
          <>
            <label for="book-pet">Which pet is the visit for?</label>
            <select id="book-pet" value={patientId} onChange={(e) => setPatientId((e.target as HTMLSelectElement).value)}>
              {petsHere.map((p) => <option value={p.patient_id}>{p.name}</option>)}
            </select>
          </>
        )}
        {pets !== null && petsHere.length === 0 && (
          <p class="empty">Your clinic has no pets on file for you yet, so a visit cannot be booked online.</p>
        )}

        <h2 id="book-times">Free times</h2>
        <p class="sent-note" role="status" tabIndex={-1} ref={sentRef}>{sent}</p>
        {error && <p class="error" role="alert">{error}</p>}
        {offer === null ? (
          <p role="status">Loading…</p>
        ) : offer === "requests" ? (
          <>
            <p>{clinicName(clinicId)} does not take online bookings. You can ask for an appointment from your pet's page instead.</p>
            <ul class="cards">
              {petsHere.map((p) => (
                <li class="card"><a href={`/pets/${encodeURIComponent(p.patient_id)}`}>Request an appointment for {p.name}</a></li>
              ))}
              {petsHere.length === 0 && <li class="card"><a href="/pets">Your pets</a></li>}
            </ul>
          </>
        ) : offer.slots.length === 0 ? (
          <p class="empty">No free times in the next two weeks. Please message your clinic.</p>
        ) : (
          <>
            <p class="hint">Times are the clinic's local time ({offer.timezone}). Choosing one holds it for you for a few minutes.</p>
            {byDay(offer.slots, offer.timezone).map((day) => (
              <fieldset class="day">
                <legend>{day.label}</legend>
                <div class="slots">
                  {day.slots.map((slot) => (
                    <label class="slot">
                      <input type="radio" name="slot" value={slot.slot_id} checked={selected === slot.slot_id}
                        onChange={() => pick(slot)} />
                      <span>{clinicTime(slot.starts_at, offer.timezone, TIME)}</span>
                      {(slot.appointment_type || slot.provider) && (
                        <span class="slot-meta">{[slot.appointment_type, slot.provider].filter(Boolean).join(", ")}</span>
                      )}
                    </label>
                  ))}
                </div>
              </fieldset>
            ))}
          </>
        )}

        <p role="status" class="hint">{holdNote}</p>
        {chosen && (
          <div class="chosen">
            <p><strong>{clinicTime(chosen.starts_at, zone, FULL)}</strong>{chosen.duration_minutes ? `, ${chosen.duration_minutes} minutes` : ""}</p>
            {heldNow && secondsLeft !== null && (
              <p role="timer" class="hint">
                {secondsLeft > 0
                  ? `Held for you: ${Math.floor(secondsLeft / 60)}:${String(secondsLeft % 60).padStart(2, "0")} left`
                  : "The hold has ended; you can still book this time if it is free."}
              </p>
            )}
            <label for="book-note">A note for the clinic (optional)</label>
            <textarea id="book-note" rows={3} maxLength={500} value={note}
              onInput={(e) => setNote((e.target as HTMLTextAreaElement).value)} />
            <button type="submit" disabled={busy || !patientId}>Book this time</button>
          </div>
        )}
      </form>

      <h2 id="your-bookings">Your bookings</h2>
      {bookings === null ? <p role="status">Loading…</p> : bookings.length === 0 ? (
        <p class="empty">No online bookings yet.</p>
      ) : (
        <ul class="cards" aria-labelledby="your-bookings">
          {bookings.map((b) => (
            <li class={`card booking ${b.status}`}>
              <strong>{petName(b.patient_id)} · {clinicTime(b.slot.starts_at, zones[b.clinic_id], FULL)}</strong>
              {b.slot.appointment_type && <span>{b.slot.appointment_type}</span>}
              {clinics.length > 1 && <span>{clinicName(b.clinic_id)}</span>}
              <span class="tag">{bookingStatus(b)}</span>
              {b.note && <span>“{b.note}”</span>}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
