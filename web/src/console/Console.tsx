import { useEffect, useState } from "preact/hooks";
import { AuthImage } from "../AuthImage";
import { problem, type Schemas } from "../api";
import { navigate } from "../router";
import { FormsScreen } from "./Forms";
import { OutboundScreen } from "./Outbound";
import { setStaffSession, staffApi, staffImage, staffSession } from "./staff";

export function Console({ path }: { path: string }) {
  const [signedIn, setSignedIn] = useState(staffSession() !== null);
  useEffect(() => {
    const update = () => setSignedIn(staffSession() !== null);
    window.addEventListener("petportal:staff", update);
    return () => window.removeEventListener("petportal:staff", update);
  }, []);
  if (!signedIn) return <StaffSignIn />;
  const conversation = path.match(/^\/console\/conversations\/([0-9a-f-]+)$/);
  let screen;
  if (conversation) screen = <ConversationScreen conversationId={conversation[1]} />;
  else if (path === "/console/sign-in-link") screen = <ClinicLink />;
  else if (path === "/console/feedback") screen = <FeedbackScreen />;
  else if (path === "/console/requests") screen = <RequestsScreen />;
  else if (path === "/console/refills") screen = <RefillsScreen />;
  else if (path === "/console/forms") screen = <FormsScreen />;
  else if (path === "/console/outbound") screen = <OutboundScreen />;
  else screen = <Conversations />;
  return (
    <div class="shell console">
      <a class="skip" href="#main">Skip to content</a>
      <header>
        <span class="brand">Clinic console</span>
        <button type="button" class="secondary small" onClick={() => setStaffSession(null)}>Sign out</button>
      </header>
      <nav aria-label="Console">
        <a href="/console" aria-current={path === "/console" || path.startsWith("/console/conversations") ? "page" : undefined}>Conversations</a>
        <a href="/console/requests" aria-current={path === "/console/requests" ? "page" : undefined}>Appointment requests</a>
        <a href="/console/refills" aria-current={path === "/console/refills" ? "page" : undefined}>Refill requests</a>
        <a href="/console/forms" aria-current={path === "/console/forms" ? "page" : undefined}>Forms</a>
        <a href="/console/outbound" aria-current={path === "/console/outbound" ? "page" : undefined}>Outbound queue</a>
        <a href="/console/feedback" aria-current={path === "/console/feedback" ? "page" : undefined}>Feedback</a>
        <a href="/console/sign-in-link" aria-current={path.startsWith("/console/sign-in-link") ? "page" : undefined}>Sign-in link and QR code</a>
      </nav>
      <main id="main">{screen}</main>
    </div>
  );
}

function StaffSignIn() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  async function submit(event: Event) {
    event.preventDefault();
    setError("");
    const { data, error } = await staffApi.POST("/clinic/v1/auth/token", { body: { email, password } });
    if (!data) return setError(problem(error, "Those details did not work."));
    setStaffSession({ access_token: data.access_token, expires_at: Date.now() + data.expires_in * 1000 });
    navigate("/console", true);
  }
  return (
    <main class="sign-in" id="main">
      <h1>Clinic console</h1>
      <form onSubmit={submit}>
        <label for="staff-email">Email</label>
        <input id="staff-email" type="email" autoComplete="username" required value={email}
          onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />
        <label for="staff-password">Password</label>
        <input id="staff-password" type="password" autoComplete="current-password" required value={password}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        <button type="submit">Sign in</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
    </main>
  );
}

function Conversations() {
  const [page, setPage] = useState<Schemas["ConversationList"] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    const load = () =>
      staffApi.GET("/clinic/v1/conversations").then(({ data, error }) => (data ? setPage(data) : setError(problem(error))));
    load();
    const timer = setInterval(load, 10_000);
    return () => clearInterval(timer);
  }, []);
  if (error) return <p class="error" role="alert">{error}</p>;
  if (!page) return <p role="status">Loading…</p>;
  return (
    <>
      <h1>Conversations</h1>
      {page.conversations.length === 0 && <p class="empty">No conversations yet.</p>}
      <ul class="cards">
        {page.conversations.map((c) => (
          <li class="card">
            <a href={`/console/conversations/${c.conversation_id}`}>Client {c.client_id}</a>
            {c.unread_count > 0 && <span class="count" aria-label={`${c.unread_count} unread`}>{c.unread_count}</span>}
            <span>{c.status === "closed" ? "closed" : "open"} · {new Date(c.last_activity_at).toLocaleString()}</span>
          </li>
        ))}
      </ul>
    </>
  );
}

function ConversationScreen({ conversationId }: { conversationId: string }) {
  const [detail, setDetail] = useState<Schemas["ConversationDetail"] | null>(null);
  const [sms, setSms] = useState<Schemas["SmsStatusPublic"] | null>(null);
  const [draft, setDraft] = useState("");
  const [error, setError] = useState("");
  const params = { params: { path: { conversation_id: conversationId } } };

  async function load() {
    const { data, error } = await staffApi.GET("/clinic/v1/conversations/{conversation_id}", params);
    if (!data) return setError(problem(error, "This conversation could not be found."));
    setDetail(data);
    const newestFromClient = data.messages.find((m) => m.sender === "client");
    if (data.unread_count > 0 && newestFromClient) {
      await staffApi.POST("/clinic/v1/conversations/{conversation_id}/read", { ...params, body: { up_to: newestFromClient.message_id } });
    }
  }
  useEffect(() => {
    load();
    const timer = setInterval(load, 5_000);
    return () => clearInterval(timer);
  }, [conversationId]);
  useEffect(() => {
    if (!detail) return;
    staffApi.GET("/clinic/v1/clients/{client_id}/sms-status", { params: { path: { client_id: detail.client_id } } })
      .then(({ data }) => data && setSms(data));
  }, [detail?.client_id]);

  async function reply(event: Event) {
    event.preventDefault();
    if (!detail || !draft.trim()) return;
    const { error } = await staffApi.POST("/clinic/v1/clients/{client_id}/messages", {
      params: { path: { client_id: detail.client_id } },
      body: { body: draft.trim() },
    });
    if (error) return setError(problem(error, "The message was not sent."));
    setDraft("");
    await load();
  }

  if (error) return <p class="error" role="alert">{error}</p>;
  if (!detail) return <p role="status">Loading…</p>;
  return (
    <>
      <p><a href="/console">← Conversations</a></p>
      <h1>Client {detail.client_id}</h1>
      {sms && (
        <p class={sms.sms_opt_out_indicator || sms.email_opt_out_indicator ? "error" : "hint"}>
          {sms.sms_opt_out_indicator ? "Opted out of texts (SMS opt-out indicator on)" : "Receives texts"}
          {" · "}
          {sms.email_opt_out_indicator ? "Email notifications off" : "Receives email"}
        </p>
      )}
      <ol class="messages" aria-label="Messages">
        {[...detail.messages].reverse().map((m) => (
          <li class={m.sender === "staff" ? "mine" : "theirs"}>
            <span class="visually-hidden">{m.sender === "staff" ? "Clinic" : "Client"}: </span>
            {m.body}
            {m.has_photo && <StaffPhoto conversationId={conversationId} messageId={m.message_id} />}
            <time dateTime={m.sent_at}>{new Date(m.sent_at).toLocaleString()}</time>
          </li>
        ))}
      </ol>
      <form class="reply" onSubmit={reply}>
        <label for="staff-reply" class="visually-hidden">Reply</label>
        <textarea id="staff-reply" rows={2} maxLength={5000} placeholder="Write a reply" value={draft}
          onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)} />
        <button type="submit">Send</button>
      </form>
    </>
  );
}

function StaffPhoto({ conversationId, messageId }: { conversationId: string; messageId: string }) {
  const path = `/clinic/v1/conversations/${conversationId}/messages/${messageId}/photo?size=thumbnail`;
  return <AuthImage path={path} fetchImage={staffImage} alt="Photo in the message" class="message-photo" />;
}

function ClinicLink() {
  const [link, setLink] = useState<Schemas["ClinicLink"] | null>(null);
  useEffect(() => {
    staffApi.GET("/clinic/v1/sign-in-link").then(({ data }) => data && setLink(data));
  }, []);
  if (!link) return <p role="status">Loading…</p>;
  return (
    <>
      <h1>Your clinic's sign-in link</h1>
      <p>Clients who open it (or scan the code) sign in to your clinic's portal.</p>
      <p><a href={link.url}>{link.url}</a></p>
      <AuthImage path={link.qr_svg} fetchImage={staffImage} alt={`QR code for ${link.url}`} class="qr" />
      <div class="actions">
        <button type="button" onClick={() => window.print()}>Print</button>
      </div>
    </>
  );
}


function FeedbackScreen() {
  const [list, setList] = useState<Schemas["FeedbackList"] | null>(null);
  useEffect(() => {
    staffApi.GET("/clinic/v1/feedback").then(({ data }) => data && setList(data));
  }, []);
  if (!list) return <p role="status">Loading…</p>;
  return (
    <>
      <h1>Feedback about the portal</h1>
      {list.feedback.length === 0 && <p class="empty">No feedback yet.</p>}
      <ul class="cards">
        {list.feedback.map((f) => (
          <li class="card">
            <strong aria-label={`${f.rating} out of 5`}>{"★".repeat(f.rating)}{"☆".repeat(5 - f.rating)}</strong>
            <span>Client {f.client_id} · {new Date(f.created_at).toLocaleDateString()}</span>
            {f.text && <span>{f.text}</span>}
          </li>
        ))}
      </ul>
    </>
  );
}


function RequestsScreen() {
  const [requests, setRequests] = useState<Schemas["RequestPublic"][] | null>(null);
  const load = () =>
    staffApi.GET("/clinic/v1/appointment-requests", { params: { query: { status: "pending" } } }).then(({ data }) => data && setRequests(data.requests));
  useEffect(() => {
    load();
  }, []);
  if (!requests) return <p role="status">Loading…</p>;
  return (
    <>
      <h1>Appointment requests</h1>
      {requests.length === 0 && <p class="empty">No requests waiting.</p>}
      <ul class="cards">
        {requests.map((r) => (
          <RequestCard request={r} onAnswered={load} />
        ))}
      </ul>
    </>
  );
}

function RequestCard({ request, onAnswered }: { request: Schemas["RequestPublic"]; onAnswered: () => void }) {
  const first = request.preferred_times[0];
  const [time, setTime] = useState(first ? first.slice(0, 16) : "");
  const [error, setError] = useState("");
  async function answer(decision: "accept" | "decline" | "propose") {
    const at = decision === "decline" ? null : new Date(time.length === 16 ? `${time}Z` : time).toISOString();
    const { error } = await staffApi.POST("/clinic/v1/appointment-requests/{request_id}/answer", {
      params: { path: { request_id: request.request_id } },
      body: { decision, time: at },
    });
    if (error) return setError(problem(error, "The answer was not saved."));
    onAnswered();
  }
  const id = `time-${request.request_id}`;
  return (
    <li class="card request">
      <strong>Client {request.client_id} · pet {request.patient_id}</strong>
      <span>{request.reason}</span>
      <span>Prefers: {request.preferred_times.map((t) => new Date(t).toLocaleString()).join(", ")}</span>
      <label for={id}>Appointment time (UTC)</label>
      <input id={id} type="datetime-local" value={time} onInput={(e) => setTime((e.target as HTMLInputElement).value)} />
      <div class="actions">
        <button type="button" onClick={() => answer("accept")}>Accept</button>
        <button type="button" class="secondary" onClick={() => answer("propose")}>Propose this time</button>
        <button type="button" class="secondary" onClick={() => answer("decline")}>Decline</button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
    </li>
  );
}


function RefillsScreen() {
  const [refills, setRefills] = useState<Schemas["RefillPublic"][] | null>(null);
  const load = () =>
    staffApi.GET("/clinic/v1/refill-requests", { params: { query: { status: "pending" } } }).then(({ data }) => data && setRefills(data.requests));
  useEffect(() => {
    load();
  }, []);
  if (!refills) return <p role="status">Loading…</p>;
  return (
    <>
      <h1>Refill requests</h1>
      {refills.length === 0 && <p class="empty">No refill requests waiting.</p>}
      <ul class="cards">
        {refills.map((r) => (
          <RefillCard refill={r} onDecided={load} />
        ))}
      </ul>
    </>
  );
}

function RefillCard({ refill, onDecided }: { refill: Schemas["RefillPublic"]; onDecided: () => void }) {
  const [note, setNote] = useState("");
  const [error, setError] = useState("");
  async function decide(decision: "approve" | "deny") {
    const { error } = await staffApi.POST("/clinic/v1/refill-requests/{request_id}/decision", {
      params: { path: { request_id: refill.request_id } },
      body: { decision, note: note.trim() || null },
    });
    if (error) return setError(problem(error, decision === "deny" ? "Say why the refill is denied." : "The decision was not saved."));
    onDecided();
  }
  const id = `note-${refill.request_id}`;
  return (
    <li class="card request">
      <strong>{refill.medication_name} · client {refill.client_id} · pet {refill.patient_id}</strong>
      {refill.parent_note && <span>“{refill.parent_note}”</span>}
      <label for={id}>Note to the client (required to deny)</label>
      <input id={id} maxLength={500} value={note} onInput={(e) => setNote((e.target as HTMLInputElement).value)} />
      <div class="actions">
        <button type="button" onClick={() => decide("approve")}>Approve</button>
        <button type="button" class="secondary" onClick={() => decide("deny")}>Deny</button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
    </li>
  );
}
