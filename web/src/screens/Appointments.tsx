// Upcoming appointments, each with the parent's answer to the clinic: confirm it, or ask to cancel it
// (asked twice). The answer goes to the clinic's system; the appointment itself changes when that
// system says so, so what was sent is shown on the card until then.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, problem, type Schemas } from "../api";

type Appointment = Schemas["UpcomingAppointment"] | Schemas["AppointmentPublic"];
type Answer = "confirm" | "cancel";

const SENT: Record<Answer, string> = { confirm: "Confirmation sent", cancel: "Cancellation requested" };

/** A time as the clinic's clock shows it (the browser's own zone if the clinic's is unknown). */
export function clinicTime(iso: string, timeZone: string | undefined, options?: Intl.DateTimeFormatOptions): string {
  const format = options ?? { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  try {
    return new Date(iso).toLocaleString(undefined, { ...format, timeZone });
  } catch {
    return new Date(iso).toLocaleString(undefined, format);
  }
}

export function AppointmentCard({ appointment, showPet }: { appointment: Appointment; showPet?: boolean }) {
  const a = appointment;
  const [sent, setSent] = useState<Answer | null>(null);
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const keep = useRef<HTMLButtonElement>(null);
  const status = useRef<HTMLParagraphElement>(null);
  const id = `appointment-${a.clinic_id}-${a.appointment_id}`.replace(/[^A-Za-z0-9_-]/g, "_");
  useEffect(() => {
    if (asking) keep.current?.focus();
  }, [asking]);

  async function answer(kind: Answer) {
    setBusy(true);
    setError("");
    const { data, error } = await api.POST("/api/v1/appointments/{appointment_id}/answer", {
      params: { path: { appointment_id: a.appointment_id } },
      body: { clinic_id: a.clinic_id, answer: kind },
    });
    setBusy(false);
    setAsking(false);
    if (!data) return setError(problem(error, "Your answer was not sent. Please try again."));
    setSent(kind);
    status.current?.focus();
  }

  const confirmed = a.status === "confirmed";
  return (
    <li class="card appointment">
      <span id={id}>
        {showPet && <strong>{a.pet_name ?? "Appointment"} </strong>}
        <time dateTime={a.starts_at}>{clinicTime(a.starts_at, a.timezone)}</time>
      </span>
      {(a.appointment_type || a.reason) && <span>{[a.appointment_type, a.reason].filter(Boolean).join(" · ")}</span>}
      {a.provider && <span>with {a.provider}</span>}
      {confirmed && sent !== "cancel" && <span class="tag">Confirmed</span>}
      <p class="sent" role="status" tabIndex={-1} ref={status}>{sent ? SENT[sent] : ""}</p>
      {asking ? (
        <div class="confirm-box" role="group" aria-labelledby={`${id}-ask`}>
          <p id={`${id}-ask`}>Cancel this appointment? Your clinic will be asked to cancel it.</p>
          <div class="actions">
            <button type="button" class="danger" disabled={busy} onClick={() => answer("cancel")}>Yes, cancel it</button>
            <button type="button" class="secondary" ref={keep} onClick={() => setAsking(false)}>Keep it</button>
          </div>
        </div>
      ) : (
        sent !== "cancel" && (
          <div class="actions">
            {!confirmed && sent !== "confirm" && (
              <button type="button" class="small" disabled={busy} aria-describedby={id} onClick={() => answer("confirm")}>Confirm</button>
            )}
            <button type="button" class="small secondary" disabled={busy} aria-describedby={id} onClick={() => setAsking(true)}>Cancel appointment</button>
          </div>
        )
      )}
      {error && <p class="error" role="alert">{error}</p>}
    </li>
  );
}

/** A pet's upcoming appointments at its clinic. */
export function PetAppointments({ patientId, clinicId }: { patientId: string; clinicId: string }) {
  const [appointments, setAppointments] = useState<Schemas["AppointmentPublic"][] | null>(null);
  useEffect(() => {
    api.GET("/api/v1/appointments").then(({ data }) =>
      setAppointments(data ? data.appointments.filter((a) => a.patient_id === patientId && a.clinic_id === clinicId) : []),
    );
  }, [patientId, clinicId]);
  if (appointments === null) return null;
  return (
    <section aria-labelledby="upcoming">
      <h2 id="upcoming">Upcoming appointments</h2>
      {appointments.length === 0 ? <p class="empty">No upcoming appointments.</p> : (
        <ul class="cards">
          {appointments.map((a) => <AppointmentCard key={a.appointment_id} appointment={a} />)}
        </ul>
      )}
    </section>
  );
}
