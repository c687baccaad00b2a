import { useEffect, useState } from "preact/hooks";
import { AuthImage } from "../AuthImage";
import { PetAppointments } from "./Appointments";
import { changed } from "./Layout";
import { api, download, imageUrl, problem, putFile, type Schemas } from "../api";

function Photo({ url, name, size }: { url: string | null | undefined; name: string; size: "thumbnail" | "full" }) {
  return (
    <AuthImage
      path={url ? `${url}${url.includes("?") ? "&" : "?"}size=${size}` : null}
      fetchImage={imageUrl}
      alt={`Photo of ${name}`}
      class={`photo ${size}`}
      fallback={<div class={`photo ${size} none`} aria-hidden="true">{name.slice(0, 1)}</div>}
    />
  );
}

export function Pets() {
  const [pets, setPets] = useState<Schemas["PetPublic"][] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api.GET("/api/v1/pets").then(({ data, error }) => {
      if (data) setPets(data.pets);
      else setError(problem(error));
    });
  }, []);
  if (error) return <p class="error" role="alert">{error}</p>;
  if (!pets) return <p role="status">Loading…</p>;
  return (
    <>
      <h1>Pets</h1>
      {pets.length === 0 && <p class="empty">Your clinic has no pets on file for you yet.</p>}
      <ul class="cards">
        {pets.map((pet) => (
          <li class="card pet">
            <Photo url={pet.photo_url} name={pet.name} size="thumbnail" />
            <a href={`/pets/${encodeURIComponent(pet.patient_id)}`}>{pet.name}</a>
            <span>{[pet.species, pet.breed, pet.age?.text].filter(Boolean).join(" · ")}</span>
          </li>
        ))}
      </ul>
    </>
  );
}

export function Pet({ patientId }: { patientId: string }) {
  const [pet, setPet] = useState<Schemas["PetPublic"] | null>(null);
  const [vaccinations, setVaccinations] = useState<Schemas["VaccinationPublic"][]>([]);
  const [reminders, setReminders] = useState<Schemas["ReminderPublic"][]>([]);
  const [error, setError] = useState("");
  const [photoVersion, setPhotoVersion] = useState(0);
  const [photoStatus, setPhotoStatus] = useState("");
  const loadPet = () =>
    api.GET("/api/v1/pets/{patient_id}", { params: { path: { patient_id: patientId } } }).then(({ data, error }) => {
      if (data) setPet(data);
      else setError(problem(error, "This pet could not be found."));
    });
  useEffect(() => {
    const params = { params: { path: { patient_id: patientId } } };
    loadPet();
    api.GET("/api/v1/pets/{patient_id}/vaccinations", params).then(({ data }) => data && setVaccinations(data.vaccinations));
    api.GET("/api/v1/pets/{patient_id}/reminders", params).then(({ data }) => data && setReminders(data.reminders));
  }, [patientId]);

  if (error) return <p class="error" role="alert">{error}</p>;
  if (!pet) return <p role="status">Loading…</p>;
  const rows: [string, string | null | undefined][] = [
    ["Species", pet.species],
    ["Breed", pet.breed],
    ["Sex", pet.sex],
    ["Born", pet.date_of_birth],
    ["Age", pet.age?.text],
    ["Colour", pet.colour],
    ["Weight", pet.weight_kg ? `${pet.weight_kg} kg` : null],
    ["Microchip", pet.microchip],
  ];
  const photoPath = `/api/v1/pets/${encodeURIComponent(pet.patient_id)}/photo`;
  async function upload(event: Event) {
    const input = event.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    setPhotoStatus("Uploading…");
    const response = await putFile(photoPath, file);
    if (response.ok) {
      setPhotoStatus("Photo saved.");
      setPhotoVersion((v) => v + 1);
      await loadPet();
    } else {
      const reasons: Record<number, string> = {
        413: "That photo is too large (8 MB at most).",
        415: "That file is not a photo we can use (JPEG, PNG, WebP or HEIC).",
      };
      setPhotoStatus(reasons[response.status] ?? "The photo could not be saved. Please try another one.");
    }
  }
  async function removePhoto() {
    const { response } = await api.DELETE("/api/v1/pets/{patient_id}/photo", { params: { path: { patient_id: pet!.patient_id } } });
    setPhotoStatus(response.ok ? "Photo removed." : "The photo could not be removed.");
    await loadPet();
  }
  return (
    <>
      <p><a href="/pets">← Pets</a></p>
      <h1>{pet.name}</h1>
      <Photo key={photoVersion} url={pet.photo_url} name={pet.name} size="full" />
      <div class="actions">
        <label class="button">
          {pet.photo_url ? "Replace photo" : "Add a photo"}
          <input class="visually-hidden" type="file" accept="image/*" capture="environment" onChange={upload} />
        </label>
        {pet.photo_url && <button type="button" class="secondary" onClick={removePhoto}>Remove photo</button>}
      </div>
      <p role="status">{photoStatus}</p>
      <dl class="facts">
        {rows.filter(([, value]) => value).map(([label, value]) => (
          <div><dt>{label}</dt><dd>{value}</dd></div>
        ))}
      </dl>
      <p class="hint">These details come from your clinic's records; to change them, ask your clinic.</p>
      <button
        type="button"
        onClick={() => download(`/api/v1/pets/${encodeURIComponent(pet.patient_id)}/id-card.pdf`, `${pet.name}-id-card.pdf`).catch(() => setError("The ID card could not be downloaded."))}
      >
        Download ID card (PDF)
      </button>
      <PetAppointments patientId={pet.patient_id} clinicId={pet.clinic_id} />
      <RequestVisit patientId={pet.patient_id} clinicId={pet.clinic_id} petName={pet.name} />
      <Medications patientId={pet.patient_id} clinicId={pet.clinic_id} />
      <h2>Reminders</h2>
      {reminders.length === 0 ? <p class="empty">No reminders.</p> : (
        <ul class="cards">
          {reminders.map((r) => (
            <li class={r.overdue ? "card overdue" : "card"}>
              <strong>{r.service}</strong> <span>due {r.due_on}{r.overdue ? " (overdue)" : ""}</span>
            </li>
          ))}
        </ul>
      )}
      <h2>Vaccinations</h2>
      {vaccinations.length === 0 ? <p class="empty">No vaccinations on file.</p> : (
        <ul class="cards">
          {vaccinations.map((v) => (
            <li class="card"><strong>{v.name}</strong> <span>given {v.given_on}{v.expires_on ? `, expires ${v.expires_on}` : ""}</span></li>
          ))}
        </ul>
      )}
    </>
  );
}


const STATUS: Record<string, string> = {
  pending: "Waiting for the clinic",
  accepted: "Booked",
  declined: "Declined",
  proposed: "The clinic proposes another time",
  cancelled: "Cancelled",
};

function when(iso: string): string {
  return new Date(iso).toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

function RequestVisit({ patientId, clinicId, petName }: { patientId: string; clinicId: string; petName: string }) {
  const [requests, setRequests] = useState<Schemas["RequestPublic"][]>([]);
  const [reason, setReason] = useState("");
  const [time, setTime] = useState("");
  const [status, setStatus] = useState("");
  const load = () =>
    api.GET("/api/v1/appointment-requests").then(({ data }) => {
      if (!data) return;
      const mine = data.requests.filter((r) => r.patient_id === patientId && r.clinic_id === clinicId);
      setRequests(mine);
      // Shown here, an answer has been seen: it leaves the To-Do list.
      const unseen = mine.filter((r) => r.status !== "pending" && r.status !== "cancelled" && !r.seen_at);
      Promise.all(unseen.map((r) => api.POST("/api/v1/appointment-requests/{request_id}/seen", { params: { path: { request_id: r.request_id } } })))
        .then(() => unseen.length > 0 && changed());
    });
  useEffect(() => {
    load();
  }, [patientId]);

  async function submit(event: Event) {
    event.preventDefault();
    const preferred = new Date(time);
    if (Number.isNaN(preferred.getTime())) return setStatus("Choose a day and time that suits you.");
    const { data, error } = await api.POST("/api/v1/appointment-requests", {
      body: { patient_id: patientId, clinic_id: clinicId, reason, preferred_times: [preferred.toISOString()] },
    });
    if (!data) return setStatus(problem(error, "Your request was not sent. Please try again."));
    setReason("");
    setTime("");
    setStatus("Request sent. The clinic will answer here.");
    await load();
  }

  return (
    <section aria-labelledby="visit">
      <h2 id="visit">Request an appointment</h2>
      {requests.length > 0 && (
        <ul class="cards" aria-label="Your requests">
          {requests.map((r) => (
            <li class="card">
              <strong>{STATUS[r.status] ?? r.status}</strong>
              <span>{r.reason}</span>
              {r.answer_time && <span>{when(r.answer_time)}</span>}
              {r.note && <span>“{r.note}”</span>}
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={submit}>
        <label for="visit-reason">What is it about?</label>
        <input id="visit-reason" required maxLength={500} value={reason} placeholder={`e.g. ${petName} is limping`}
          onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
        <label for="visit-time">A day and time that suits you</label>
        <input id="visit-time" type="datetime-local" required value={time}
          onInput={(e) => setTime((e.target as HTMLInputElement).value)} />
        <button type="submit">Send request</button>
        <p role="status">{status}</p>
      </form>
    </section>
  );
}


const REFILL_STATUS: Record<string, string> = {
  pending: "Refill requested: waiting for the clinic",
  approved: "Refill approved",
  denied: "Refill denied",
};

/** Current medications; a refill can be asked for one with refills left (one pending at a time). */
function Medications({ patientId, clinicId }: { patientId: string; clinicId: string }) {
  const [medications, setMedications] = useState<Schemas["MedicationPublic"][]>([]);
  const [refills, setRefills] = useState<Schemas["RefillPublic"][]>([]);
  const [status, setStatus] = useState("");
  const load = async () => {
    const [meds, asked] = await Promise.all([
      api.GET("/api/v1/pets/{patient_id}/medications", { params: { path: { patient_id: patientId } } }),
      api.GET("/api/v1/refill-requests"),
    ]);
    if (meds.data) setMedications(meds.data.medications);
    if (!asked.data) return;
    const mine = asked.data.requests.filter((r) => r.patient_id === patientId && r.clinic_id === clinicId);
    setRefills(mine);
    const unseen = mine.filter((r) => r.status !== "pending" && !r.seen_at);
    await Promise.all(unseen.map((r) => api.POST("/api/v1/refill-requests/{request_id}/seen", { params: { path: { request_id: r.request_id } } })));
    if (unseen.length > 0) changed();
  };
  useEffect(() => {
    load();
  }, [patientId]);

  async function ask(prescriptionId: string) {
    const { data, error } = await api.POST("/api/v1/refill-requests", { body: { patient_id: patientId, prescription_id: prescriptionId } });
    setStatus(data ? "Refill requested. Your clinic will answer here." : problem(error, "The refill could not be requested. Please try again."));
    await load();
  }

  if (medications.length === 0 && refills.length === 0) return null;
  const latest = (prescriptionId: string) => refills.find((r) => r.prescription_id === prescriptionId);
  return (
    <section aria-labelledby="medications">
      <h2 id="medications">Medications</h2>
      <ul class="cards">
        {medications.map((m) => {
          const refill = latest(m.prescription_id);
          return (
            <li class="card request">
              <strong>{m.name}</strong>
              {m.dose && <span>{m.dose}</span>}
              <span>{m.refills_remaining === 1 ? "1 refill left" : `${m.refills_remaining} refills left`}</span>
              {refill && <span>{REFILL_STATUS[refill.status] ?? refill.status}{refill.clinic_note ? `: “${refill.clinic_note}”` : ""}</span>}
              {m.refills_remaining > 0 && refill?.status !== "pending" && (
                <button type="button" class="small" onClick={() => ask(m.prescription_id)}>Request a refill</button>
              )}
            </li>
          );
        })}
      </ul>
      <p role="status">{status}</p>
    </section>
  );
}
