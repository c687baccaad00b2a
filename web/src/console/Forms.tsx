// The clinic's forms in the console: publish a form (its fields), assign it to a client, and read the
// submissions with their PDF.
import { useEffect, useState } from "preact/hooks";
import { problem, type Schemas } from "../api";
import { staffApi, staffSession } from "./staff";

type FieldType = Schemas["FieldType"];
type Draft = { name: string; label: string; type: FieldType; required: boolean; options: string };
type ApiError = { loc: (string | number)[]; msg: string };

const TYPES: Record<FieldType, string> = { text: "Text", choice: "Choice", date: "Date", signature: "Signature (name + consent)" };
const blank = (): Draft => ({ name: "", label: "", type: "text", required: false, options: "" });

/** The detail of a 422 as "where: what" lines, or the API's own words. */
function explain(error: unknown, fallback: string): string {
  const detail = error && typeof error === "object" ? (error as { detail?: unknown }).detail : undefined;
  if (Array.isArray(detail)) return (detail as ApiError[]).map((e) => `${e.loc.slice(1).join(" ")}: ${e.msg}`).join("; ");
  return problem(error, fallback);
}

async function staffDownload(path: string, filename: string): Promise<void> {
  const token = staffSession()?.access_token;
  const response = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!response.ok) return;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function FormsScreen() {
  const [forms, setForms] = useState<Schemas["FormPublic"][] | null>(null);
  const [submissions, setSubmissions] = useState<Schemas["AssignmentPublic"][]>([]);
  const [error, setError] = useState("");
  const load = async () => {
    const [found, assigned] = await Promise.all([staffApi.GET("/clinic/v1/forms"), staffApi.GET("/clinic/v1/form-submissions")]);
    if (found.data) setForms(found.data.forms);
    if (assigned.data) setSubmissions(assigned.data.submissions);
    setError(found.data && assigned.data ? "" : problem(found.error ?? assigned.error, "The forms could not be loaded."));
  };
  useEffect(() => {
    load();
  }, []);
  if (!forms) return error ? <p class="error" role="alert">{error}</p> : <p role="status">Loading…</p>;
  return (
    <>
      <h1>Forms</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {forms.length === 0 && <p class="empty">No forms published yet.</p>}
      <ul class="cards">
        {forms.map((f) => (
          <AssignCard key={f.form_id} form={f} onAssigned={load} />
        ))}
      </ul>
      <PublishForm onPublished={load} />
      <h2>Assigned and completed</h2>
      {submissions.length === 0 ? <p class="empty">No forms assigned yet.</p> : (
        <ul class="cards" aria-label="Form submissions">
          {submissions.map((s) => (
            <li class="card">
              <strong>{s.title} (v{s.version})</strong>
              <span>client {s.client_id}{s.patient_id ? ` · pet ${s.patient_id}` : ""}</span>
              <span>{s.status === "completed" ? "Completed" : "Waiting for the client"}</span>
              {s.submission_id && (
                <button type="button" class="small" onClick={() => staffDownload(`/clinic/v1/form-submissions/${s.submission_id}/pdf`, `form-${s.submission_id}.pdf`)}>
                  PDF
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function AssignCard({ form, onAssigned }: { form: Schemas["FormPublic"]; onAssigned: () => void }) {
  const [client, setClient] = useState("");
  const [pet, setPet] = useState("");
  const [status, setStatus] = useState("");
  const id = `assign-${form.form_id}`;
  async function assign(event: Event) {
    event.preventDefault();
    const { data, error } = await staffApi.POST("/clinic/v1/forms/{form_id}/assignments", {
      params: { path: { form_id: form.form_id } },
      body: { client_id: client.trim(), patient_id: pet.trim() || null },
    });
    setStatus(data ? `Assigned to client ${data.client_id}.` : explain(error, "The form was not assigned."));
    if (data) onAssigned();
  }
  return (
    <li class="card request">
      <strong>{form.title} (version {form.version}, {form.fields.length} fields)</strong>
      <form onSubmit={assign}>
        <label for={`${id}-client`}>Client id</label>
        <input id={`${id}-client`} required value={client} onInput={(e) => setClient((e.target as HTMLInputElement).value)} />
        <label for={`${id}-pet`}>Pet id (optional)</label>
        <input id={`${id}-pet`} value={pet} onInput={(e) => setPet((e.target as HTMLInputElement).value)} />
        <button type="submit" class="small">Assign</button>
        <p role="status">{status}</p>
      </form>
    </li>
  );
}

function PublishForm({ onPublished }: { onPublished: () => void }) {
  const [title, setTitle] = useState("");
  const [fields, setFields] = useState<Draft[]>([blank()]);
  const [status, setStatus] = useState("");
  const change = (index: number, part: Partial<Draft>) => setFields(fields.map((f, i) => (i === index ? { ...f, ...part } : f)));
  async function publish(event: Event) {
    event.preventDefault();
    const { data, error } = await staffApi.POST("/clinic/v1/forms", {
      body: {
        title,
        fields: fields.map((f) => ({
          name: f.name.trim(),
          label: f.label.trim(),
          type: f.type,
          required: f.required,
          options: f.type === "choice" ? f.options.split(",").map((o) => o.trim()).filter(Boolean) : null,
        })),
      },
    });
    if (!data) return setStatus(explain(error, "The form was not published."));
    setTitle("");
    setFields([blank()]);
    setStatus(`Published “${data.title}”.`);
    onPublished();
  }
  return (
    <section aria-labelledby="publish">
      <h2 id="publish">Publish a form</h2>
      <form onSubmit={publish}>
        <label for="form-title">Title</label>
        <input id="form-title" required maxLength={120} value={title} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
        {fields.map((f, i) => (
          <fieldset>
            <legend>Field {i + 1}</legend>
            <label for={`f${i}-label`}>Label</label>
            <input id={`f${i}-label`} required maxLength={200} value={f.label} onInput={(e) => change(i, { label: (e.target as HTMLInputElement).value })} />
            <label for={`f${i}-name`}>Key (lower case, digits, _)</label>
            <input id={`f${i}-name`} required pattern="[a-z][a-z0-9_]{0,39}" value={f.name} onInput={(e) => change(i, { name: (e.target as HTMLInputElement).value })} />
            <label for={`f${i}-type`}>Type</label>
            <select id={`f${i}-type`} value={f.type} onChange={(e) => change(i, { type: (e.target as HTMLSelectElement).value as FieldType })}>
              {Object.entries(TYPES).map(([value, label]) => <option value={value}>{label}</option>)}
            </select>
            {f.type === "choice" && (
              <>
                <label for={`f${i}-options`}>Options, separated by commas</label>
                <input id={`f${i}-options`} value={f.options} onInput={(e) => change(i, { options: (e.target as HTMLInputElement).value })} />
              </>
            )}
            <label class="switch">
              <input type="checkbox" checked={f.required} onChange={(e) => change(i, { required: (e.target as HTMLInputElement).checked })} />
              Required
            </label>
          </fieldset>
        ))}
        <div class="actions">
          <button type="button" class="secondary" onClick={() => setFields([...fields, blank()])}>Add a field</button>
          <button type="submit">Publish</button>
        </div>
        <p role="status">{status}</p>
      </form>
    </section>
  );
}
