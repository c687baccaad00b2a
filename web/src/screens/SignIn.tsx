import { useEffect, useState } from "preact/hooks";
import { api, problem, setSession } from "../api";
import { navigate } from "../router";

const PREFILL = "petportal.prefill";

export function SignIn({ clinicId }: { clinicId?: string }) {
  // A spent reminder link leaves the identifier on the clinic's record to start from.
  const [identifier, setIdentifier] = useState(() => {
    const prefill = sessionStorage.getItem(PREFILL) ?? "";
    sessionStorage.removeItem(PREFILL);
    return prefill;
  });
  const [challenge, setChallenge] = useState<string | null>(null);
  const [message, setMessage] = useState("");
  const [code, setCode] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function start(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError("");
    const { data, error } = await api.POST("/api/v1/auth/sign-in", {
      body: { identifier, ...(clinicId ? { clinic_id: clinicId } : {}) },
    });
    setBusy(false);
    if (!data) return setError(problem(error, "Enter the email address or mobile number your clinic has for you."));
    setChallenge(data.challenge_id);
    setMessage(data.message);
  }

  async function verify(event: Event) {
    event.preventDefault();
    if (!challenge) return;
    setBusy(true);
    setError("");
    const { data, error } = await api.POST("/api/v1/auth/sign-in/verify", {
      body: { challenge_id: challenge, code: code.trim() },
    });
    setBusy(false);
    if (!data) return setError(problem(error, "That code did not work. Check it, or ask for a new one."));
    setSession(data);
    navigate("/", true);
  }

  return (
    <main class="sign-in" id="main">
      <h1>Pet Portal</h1>
      <p class="lead">Your pets' records, reminders and a direct line to your clinic.</p>
      {!challenge ? (
        <form onSubmit={start}>
          <label for="identifier">Email or mobile number</label>
          <input
            id="identifier"
            name="identifier"
            autoComplete="username"
            required
            value={identifier}
            onInput={(e) => setIdentifier((e.target as HTMLInputElement).value)}
          />
          <p class="hint">Use the one your clinic has for you. We'll send you a sign-in code.</p>
          <button type="submit" disabled={busy}>Send me a code</button>
        </form>
      ) : (
        <form onSubmit={verify}>
          <p role="status">{message}</p>
          <label for="code">6-digit code</label>
          <input
            id="code"
            name="code"
            inputMode="numeric"
            autoComplete="one-time-code"
            pattern="[0-9]{6}"
            maxLength={6}
            required
            value={code}
            onInput={(e) => setCode((e.target as HTMLInputElement).value)}
          />
          <button type="submit" disabled={busy}>Sign in</button>
          <button type="button" class="link" onClick={() => { setChallenge(null); setCode(""); }}>
            Use another email or number
          </button>
        </form>
      )}
      {error && <p class="error" role="alert">{error}</p>}
    </main>
  );
}

/** Where a link may lead once signed in: a path of this app only (never another site), else home. */
export function inApp(next: string | null): string {
  return next && /^\/(?![\/\\])[\w\-./]*$/.test(next) && !next.includes("..") ? next : "/";
}

/** The magic link: its token is in the URL fragment (never sent to a server log). A reminder's link
 * also says which page to open (`next`: its pet's page, where an appointment is confirmed). */
export function SignInLink() {
  const [error, setError] = useState("");
  useEffect(() => {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const token = fragment.get("token");
    history.replaceState(null, "", "/sign-in/link");
    if (!token) return setError("This link is incomplete.");
    api.POST("/api/v1/auth/sign-in/link", { body: { token } }).then(async ({ data, error }) => {
      if (data) {
        setSession(data);
        return navigate(inApp(fragment.get("next")), true);
      }
      // A reminder link works once; after that it opens its clinic's sign-in, filled in.
      const prefill = await api.POST("/api/v1/auth/sign-in/link/prefill", { body: { token } });
      if (prefill.data) {
        if (prefill.data.identifier) sessionStorage.setItem(PREFILL, prefill.data.identifier);
        return navigate(`/c/${encodeURIComponent(prefill.data.clinic_id)}`, true);
      }
      setError(problem(error, "This link has expired or was already used."));
    });
  }, []);
  return (
    <main class="sign-in" id="main">
      <h1>Pet Portal</h1>
      {error ? (
        <>
          <p class="error" role="alert">{error}</p>
          <a class="button" href="/">Sign in with a code instead</a>
        </>
      ) : (
        <p role="status">Signing you in…</p>
      )}
    </main>
  );
}
