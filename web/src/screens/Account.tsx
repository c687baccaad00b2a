import { useEffect, useState } from "preact/hooks";
import { api, currentSession, problem, setSession, type Schemas } from "../api";
import { navigate } from "../router";
import { changed } from "./Layout";

export function Account() {
  const [account, setAccount] = useState<Schemas["AccountPublic"] | null>(null);
  const [prefs, setPrefs] = useState<Schemas["PreferencesPublic"] | null>(null);
  const [status, setStatus] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    api.GET("/api/v1/account").then(({ data, error }) => (data ? setAccount(data) : setError(problem(error))));
    api.GET("/api/v1/notifications/preferences").then(({ data }) => data && setPrefs(data));
  }, []);

  async function save(next: Schemas["PreferencesPublic"]) {
    setPrefs(next);
    const { data, error } = await api.PUT("/api/v1/notifications/preferences", { body: next });
    if (!data) return setError(problem(error, "Your choice was not saved. Please try again."));
    setPrefs(data);
    setStatus("Saved.");
    changed();
  }

  async function signOut(everywhere: boolean) {
    const session = currentSession();
    if (everywhere) await api.POST("/api/v1/auth/sign-out-everywhere");
    else if (session) await api.POST("/api/v1/auth/sign-out", { body: { refresh_token: session.refresh_token } });
    setSession(null);
    navigate("/", true);
  }

  return (
    <>
      <h1>Account</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {account && (
        <>
          <dl class="facts">
            <div><dt>Name</dt><dd>{account.first_name} {account.last_name}</dd></div>
            <div><dt>Email</dt><dd>{account.email ?? "—"}</dd></div>
            <div><dt>Mobile</dt><dd>{account.phone ?? "—"}</dd></div>
          </dl>
          <p class="hint">Your clinic keeps these details. To change them, contact your clinic.</p>
        </>
      )}
      <h2 id="notifications">Notifications</h2>
      {prefs && (
        <fieldset aria-labelledby="notifications">
          <label class="switch">
            <input type="checkbox" checked={prefs.email_opted_in} onChange={(e) => save({ ...prefs, email_opted_in: (e.target as HTMLInputElement).checked })} />
            Email me about messages and reminders
          </label>
          <label class="switch">
            <input type="checkbox" checked={prefs.sms_opted_in} onChange={(e) => save({ ...prefs, sms_opted_in: (e.target as HTMLInputElement).checked })} />
            Text me about messages and reminders
          </label>
          {!prefs.sms_opted_in && <p class="hint">Texts are off. You can also text START to your clinic to turn them back on.</p>}
        </fieldset>
      )}
      <p role="status">{status}</p>
      <Feedback />
      <h2>Sign out</h2>
      <div class="actions">
        <button type="button" onClick={() => signOut(false)}>Sign out</button>
        <button type="button" class="secondary" onClick={() => signOut(true)}>Sign out on every device</button>
      </div>
      <Erase />
    </>
  );
}

/** Erase my portal data: a fresh code confirms it; then the progress page (the session ends). */
function Erase() {
  const [challenge, setChallenge] = useState<string | null>(null);
  const [code, setCode] = useState("");
  const [status, setStatus] = useState("");
  async function start() {
    const { data, error } = await api.POST("/api/v1/account/erasure");
    if (!data) return setStatus(problem(error));
    setChallenge(data.challenge_id);
    setStatus(data.message);
  }
  async function confirm(event: Event) {
    event.preventDefault();
    if (!challenge) return;
    const { data, error } = await api.POST("/api/v1/account/erasure/confirm", { body: { challenge_id: challenge, code: code.trim() } });
    if (!data) return setStatus(problem(error, "That code did not work. Check it and try again."));
    setSession(null);
    navigate(`/erased/${data.erasure_id}`, true);
  }
  return (
    <section aria-labelledby="erase">
      <h2 id="erase">Erase my portal data</h2>
      <p class="hint">
        Erases your messages, photos, requests and settings in the portal, at every clinic, for good. Your clinic keeps its own records.
      </p>
      {challenge === null ? (
        <button type="button" class="danger" onClick={start}>Erase my data…</button>
      ) : (
        <form onSubmit={confirm}>
          <label for="erase-code">Code we sent you</label>
          <input id="erase-code" inputMode="numeric" autoComplete="one-time-code" pattern="[0-9]{6}" maxLength={6} required value={code} onInput={(e) => setCode((e.target as HTMLInputElement).value)} />
          <div class="actions">
            <button type="submit" class="danger">Erase everything</button>
            <button type="button" class="secondary" onClick={() => { setChallenge(null); setCode(""); setStatus(""); }}>Cancel</button>
          </div>
        </form>
      )}
      <p role="status">{status}</p>
    </section>
  );
}

/** Public: how far an erasure has got (polled until every service has confirmed). */
export function Erased({ id }: { id: string }) {
  const [erasure, setErasure] = useState<Schemas["ErasurePublic"] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    let timer: number | undefined;
    const poll = async () => {
      const { data, error } = await api.GET("/api/v1/erasures/{erasure_id}", { params: { path: { erasure_id: id } } });
      if (!data) return setError(problem(error, "We could not find this erasure request."));
      setErasure(data);
      if (data.status !== "complete") timer = window.setTimeout(poll, 2000);
    };
    poll();
    return () => window.clearTimeout(timer);
  }, [id]);
  return (
    <main class="sign-in" id="main">
      <h1>Erasing your portal data</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {erasure && (
        <p role="status">
          {erasure.status === "complete"
            ? "Done: your portal data is erased. Your clinic keeps its own records."
            : `In progress: waiting for ${erasure.waiting_for.length} part${erasure.waiting_for.length === 1 ? "" : "s"} of the portal to confirm.`}
        </p>
      )}
      <p><a href="/">Back to the sign-in page</a></p>
    </main>
  );
}


function Feedback() {
  const [rating, setRating] = useState<number | null>(null);
  const [text, setText] = useState("");
  const [status, setStatus] = useState("");
  async function submit(event: Event) {
    event.preventDefault();
    if (rating === null) return setStatus("Choose a rating first.");
    const { data, error } = await api.POST("/api/v1/feedback", { body: { rating, text: text.trim() || null } });
    if (!data) return setStatus(problem(error, "Your feedback was not sent. Please try again later."));
    setRating(null);
    setText("");
    setStatus("Thank you! Your clinic will read it.");
  }
  return (
    <form onSubmit={submit}>
      <h2 id="feedback">How is the portal working for you?</h2>
      <fieldset aria-labelledby="feedback" class="rating">
        {[1, 2, 3, 4, 5].map((value) => (
          <label>
            <input type="radio" name="rating" value={value} checked={rating === value} onChange={() => setRating(value)} />
            {value}
            <span class="visually-hidden">{value === 1 ? " (poor)" : value === 5 ? " (excellent)" : ""}</span>
          </label>
        ))}
      </fieldset>
      <label for="feedback-text">Anything you would like to tell us (optional)</label>
      <textarea id="feedback-text" rows={3} maxLength={2000} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
      <button type="submit">Send feedback</button>
      <p role="status">{status}</p>
    </form>
  );
}
