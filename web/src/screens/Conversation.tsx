import { useEffect, useRef, useState } from "preact/hooks";
import { AuthImage } from "../AuthImage";
import { api, imageUrl, problem, putFile, type Schemas } from "../api";
import { changed } from "./Layout";

// New messages appear by polling every 5 s while the screen is open (docs/frontend.md: why not SSE).
const POLL_MS = 5_000;

function MessagePhoto({ messageId }: { messageId: string }) {
  const path = `/api/v1/conversation/messages/${messageId}/photo?size=thumbnail`;
  return <AuthImage path={path} fetchImage={imageUrl} alt="Photo in the message" class="message-photo" />;
}

export function Conversation() {
  const [messages, setMessages] = useState<Schemas["MessagePublic"][] | null>(null);
  const [draft, setDraft] = useState("");
  const [error, setError] = useState("");
  const lastRead = useRef<string | null>(null);

  async function load() {
    const { data, error } = await api.GET("/api/v1/conversation");
    if (!data) return setError(problem(error));
    setMessages(data.messages);
    // Seeing the newest staff message reads everything up to it (an explicit request: GET changes nothing).
    const unread = data.messages.filter((m) => m.sender === "staff" && !m.read_at);
    const newest = unread[unread.length - 1];
    if (newest && newest.message_id !== lastRead.current) {
      lastRead.current = newest.message_id;
      const read = await api.POST("/api/v1/conversation/read", { body: { up_to: newest.message_id } });
      if (read.response.ok) changed();
    }
  }

  useEffect(() => {
    load();
    const timer = setInterval(load, POLL_MS);
    return () => clearInterval(timer);
  }, []);

  async function send(event: Event) {
    event.preventDefault();
    const body = draft.trim();
    if (!body) return;
    const { error } = await api.POST("/api/v1/conversation/messages", { body: { body } });
    if (error) return setError(problem(error, "Your message was not sent. Please try again."));
    setDraft("");
    await load();
  }

  async function sendPhoto(event: Event) {
    const input = event.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    const caption = draft.trim();
    const response = await putFile(`/api/v1/conversation/messages/photo?caption=${encodeURIComponent(caption)}`, file, "POST");
    if (!response.ok) {
      return setError(response.status === 413 ? "That photo is too large (8 MB at most)." : "That photo could not be sent. Try a JPEG, PNG or HEIC photo.");
    }
    setDraft("");
    await load();
  }

  return (
    <>
      <h1>Your clinic</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {!messages ? <p role="status">Loading…</p> : (
        <ol class="messages" aria-label="Messages" aria-live="polite">
          {messages.length === 0 && <li class="empty">No messages yet. Write to your clinic below.</li>}
          {messages.map((m) => (
            <li class={m.sender === "client" ? "mine" : "theirs"}>
              <span class="visually-hidden">{m.sender === "client" ? "You" : "Clinic"}: </span>
              {m.body}
              {m.has_photo && <MessagePhoto messageId={m.message_id} />}
              <time dateTime={m.sent_at}>{new Date(m.sent_at).toLocaleString()}</time>
            </li>
          ))}
        </ol>
      )}
      <form class="reply" onSubmit={send}>
        <label for="reply" class="visually-hidden">Message</label>
        <textarea id="reply" rows={2} maxLength={4000} placeholder="Write a message" value={draft}
          onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)} />
        <button type="submit">Send</button>
      </form>
      <label class="button secondary-label">
        Send a photo
        <input class="visually-hidden" type="file" accept="image/*" onChange={sendPhoto} />
      </label>
    </>
  );
}
