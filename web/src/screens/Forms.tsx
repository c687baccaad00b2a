import { useEffect, useRef, useState } from "preact/hooks";
import { api, download, problem, type Schemas } from "../api";
import { changed } from "./Layout";

type Field = Schemas["FormFieldPublic"];
type Signature = { full_name: string; consent: boolean };
type Value = string | Signature;
type ApiError = { loc: (string | number)[]; msg: string };

function when(iso: string): string {
  return new Date(iso).toLocaleString([], { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** The parent's clinic forms: those to fill in, then those completed (with their PDF). */
export function Forms() {
  const [forms, setForms] = useState<Schemas["AssignmentPublic"][] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api.GET("/api/v1/forms").then(({ data, error }) => (data ? setForms(data.forms) : setError(problem(error, "Your forms could not be loaded."))));
  }, []);
  if (error) return <p class="error" role="alert">{error}</p>;
  if (!forms) return <p role="status">Loading…</p>;
  const pending = forms.filter((f) => f.status === "pending");
  const completed = forms.filter((f) => f.status === "completed");
  return (
    <>
      <h1>Forms</h1>
      <h2>To fill in</h2>
      {pending.length === 0 ? <p class="empty">No forms to fill in.</p> : (
        <ul class="cards" aria-label="Forms to fill in">
          {pending.map((f) => (
            <li class="card">
              <a href={`/forms/${f.assignment_id}`}>{f.title}</a>
              <span>from your clinic, {when(f.assigned_at)}</span>
            </li>
          ))}
        </ul>
      )}
      <h2>Completed</h2>
      {completed.length === 0 ? <p class="empty">No completed forms yet.</p> : (
        <ul class="cards" aria-label="Completed forms">
          {completed.map((f) => (
            <li class="card">
              <a href={`/forms/${f.assignment_id}`}>{f.title}</a>
              {f.completed_at && <span>completed {when(f.completed_at)}</span>}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function initial(field: Field): Value {
  return field.type === "signature" ? { full_name: "", consent: false } : "";
}

/** The answers to send: optional fields left empty are left out. */
function answersOf(fields: Field[], values: Record<string, Value>): Record<string, unknown> {
  const answers: Record<string, unknown> = {};
  for (const field of fields) {
    const value = values[field.name];
    if (typeof value === "string") {
      if (value !== "" || field.required) answers[field.name] = value;
    } else if (value && (value.full_name.trim() || value.consent || field.required)) {
      answers[field.name] = { full_name: value.full_name, consent: value.consent };
    }
  }
  return answers;
}

/** Whether the error at `key` is about the answer to `name` that has just changed from `before` to
 * `after` (a signature's name and consent are each their own). */
function outdated(key: string, name: string, before: Value | undefined, after: Value): boolean {
  if (key === name) return true;
  if (!key.startsWith(`${name}.`) || typeof before !== "object" || typeof after !== "object") return false;
  const part = key.slice(name.length + 1) as keyof Signature;
  return before[part] !== after[part];
}

/** One form: filled in here (errors shown next to their fields), or its answers once completed. */
export function FormScreen({ assignmentId }: { assignmentId: string }) {
  const [form, setForm] = useState<Schemas["ParentForm"] | null>(null);
  const [values, setValues] = useState<Record<string, Value>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [status, setStatus] = useState("");
  const [loadError, setLoadError] = useState("");
  // The element to focus once the next render is on screen (the first field at fault, the thank-you),
  // so a screen reader reads it with its error or as the new screen.
  const focusNext = useRef<string | null>(null);
  useEffect(() => {
    if (!focusNext.current) return;
    document.getElementById(focusNext.current)?.focus();
    focusNext.current = null;
  });
  const load = async () => {
    const { data, error } = await api.GET("/api/v1/forms/{assignment_id}", { params: { path: { assignment_id: assignmentId } } });
    if (!data) return setLoadError(problem(error, "This form could not be loaded."));
    setForm(data);
    setValues(Object.fromEntries(data.form.fields.map((f) => [f.name, initial(f)])));
  };
  useEffect(() => {
    load();
  }, [assignmentId]);

  if (loadError) return <p class="error" role="alert">{loadError}</p>;
  if (!form) return <p role="status">Loading…</p>;
  const { assignment, form: definition } = form;
  const set = (name: string, value: Value) => {
    const before = values[name];
    setValues({ ...values, [name]: value });
    // An answer changed since it was refused is no longer marked wrong.
    if (Object.keys(errors).some((k) => outdated(k, name, before, value))) {
      const left = Object.entries(errors).filter(([k]) => !outdated(k, name, before, value));
      setErrors(Object.fromEntries(left));
      if (left.length === 0) setStatus("");
    }
  };

  async function submit(event: Event) {
    event.preventDefault();
    setStatus("");
    const { data, error, response } = await api.POST("/api/v1/forms/{assignment_id}/submission", {
      params: { path: { assignment_id: assignmentId } },
      body: { answers: answersOf(definition.fields, values) },
    });
    if (data) {
      setErrors({});
      changed();
      await load();
      focusNext.current = "form-status";
      return setStatus("Thank you: your answers were sent to your clinic.");
    }
    if (response.status === 422 && error && Array.isArray((error as { detail?: unknown }).detail)) {
      const found: Record<string, string> = {};
      for (const e of (error as { detail: ApiError[] }).detail) {
        const [, where, name, part] = e.loc;
        if (where !== "answers" || typeof name !== "string") continue;
        found[part === undefined ? name : `${name}.${part}`] ??= e.msg;
      }
      setErrors(found);
      const first = definition.fields.find((f) => Object.keys(found).some((k) => k === f.name || k.startsWith(`${f.name}.`)));
      if (first) focusNext.current = `field-${first.name}`;
      return setStatus("Some answers need another look.");
    }
    setStatus(problem(error, "Your answers were not sent. Please try again."));
  }

  const header = (
    <>
      <h1>{definition.title}</h1>
      {definition.description && <p class="lead">{definition.description}</p>}
    </>
  );
  if (assignment.status === "completed") {
    const answers = form.answers ?? {};
    return (
      <>
        {header}
        <p role="status" id="form-status" tabIndex={-1}>{status || `Completed ${assignment.completed_at ? when(assignment.completed_at) : ""}`}</p>
        <dl class="facts">
          {definition.fields.map((f) => (
            <div>
              <dt>{f.label}</dt>
              <dd>{shown(f, answers[f.name])}</dd>
            </div>
          ))}
        </dl>
        <button type="button" class="secondary" onClick={() => download(`/api/v1/forms/${assignmentId}/pdf`, `form-${assignmentId}.pdf`)}>
          Download (PDF)
        </button>
      </>
    );
  }
  return (
    <>
      {header}
      <form onSubmit={submit} noValidate>
        {definition.fields.map((f) => (
          <FieldInput field={f} value={values[f.name] ?? initial(f)} errors={errors} onChange={(v) => set(f.name, v)} />
        ))}
        <button type="submit">Send to my clinic</button>
        <p role="status">{status}</p>
      </form>
    </>
  );
}

function shown(field: Field, value: unknown): string {
  if (value === undefined || value === null || value === "") return "—";
  if (field.type === "signature" && typeof value === "object") {
    const signed = value as { full_name?: string; signed_at?: string };
    return `Signed by ${signed.full_name ?? ""}${signed.signed_at ? ` on ${when(signed.signed_at)}` : ""}`;
  }
  return String(value);
}

function ErrorText({ id, text }: { id: string; text: string | undefined }) {
  return text ? <p class="error" id={id}>{text}</p> : null;
}

function FieldInput({ field, value, errors, onChange }: { field: Field; value: Value; errors: Record<string, string>; onChange: (v: Value) => void }) {
  const id = `field-${field.name}`;
  const errorId = `${id}-error`;
  const error = errors[field.name];
  const label = `${field.label}${field.required ? " (required)" : ""}`;
  const described = error ? errorId : undefined;
  if (field.type === "signature") {
    const signature = value as Signature;
    const nameError = errors[`${field.name}.full_name`];
    const consentError = errors[`${field.name}.consent`];
    return (
      <fieldset>
        <legend><strong>{label}</strong></legend>
        <label for={id}>Your full name</label>
        <input id={id} autoComplete="name" maxLength={200} value={signature.full_name} aria-invalid={!!(error || nameError)}
          aria-describedby={[described, nameError && `${errorId}-name`].filter(Boolean).join(" ") || undefined}
          onInput={(e) => onChange({ ...signature, full_name: (e.target as HTMLInputElement).value })} />
        <ErrorText id={`${errorId}-name`} text={nameError} />
        <label class="switch">
          <input type="checkbox" checked={signature.consent} aria-invalid={!!consentError}
            aria-describedby={consentError ? `${errorId}-consent` : undefined}
            onChange={(e) => onChange({ ...signature, consent: (e.target as HTMLInputElement).checked })} />
          I agree, and sign with my name
        </label>
        <ErrorText id={`${errorId}-consent`} text={consentError} />
        <ErrorText id={errorId} text={error} />
      </fieldset>
    );
  }
  const text = value as string;
  const input = (e: Event) => onChange((e.target as HTMLInputElement).value);
  let control;
  if (field.type === "choice") {
    control = (
      <select id={id} value={text} aria-invalid={!!error} aria-describedby={described} onChange={input}>
        <option value="">Choose…</option>
        {(field.options ?? []).map((o) => <option value={o}>{o}</option>)}
      </select>
    );
  } else if (field.type === "date") {
    control = <input id={id} type="date" value={text} aria-invalid={!!error} aria-describedby={described} onInput={input} />;
  } else if ((field.max_length ?? 1000) > 200) {
    control = <textarea id={id} rows={3} maxLength={field.max_length ?? 1000} value={text} aria-invalid={!!error} aria-describedby={described} onInput={input} />;
  } else {
    control = <input id={id} maxLength={field.max_length ?? undefined} value={text} aria-invalid={!!error} aria-describedby={described} onInput={input} />;
  }
  return (
    <>
      <label for={id}>{label}</label>
      {control}
      <ErrorText id={errorId} text={error} />
    </>
  );
}
