import { useEffect, useState } from "preact/hooks";
import { api, download, imageUrl, problem, putFile, type Schemas } from "../api";

function Photo({ url, name, size }: { url: string | null | undefined; name: string; size: "thumbnail" | "full" }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    let revoked: string | null = null;
    if (url) {
      imageUrl(`${url}${url.includes("?") ? "&" : "?"}size=${size}`).then((objectUrl) => {
        revoked = objectUrl;
        setSrc(objectUrl);
      });
    } else setSrc(null);
    return () => {
      if (revoked) URL.revokeObjectURL(revoked);
    };
  }, [url, size]);
  if (!src) return <div class={`photo ${size} none`} aria-hidden="true">{name.slice(0, 1)}</div>;
  return <img class={`photo ${size}`} src={src} alt={`Photo of ${name}`} />;
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
