import { useEffect, useState } from "preact/hooks";
import { api, problem, type Schemas } from "../api";
import { AppointmentCard } from "./Appointments";

// Where a To-Do item's action leads in this app; items for screens not built yet are shown without a link.
const SCREENS = ["/conversation", "/notifications/preferences", "/pets", "/account"];
const HELP_LABELS: Record<string, string> = {
  talk_to_staff: "Message your clinic",
  live_chat: "Chat with your Care Plan team",
  book_appointment: "Request an appointment (choose your pet)",
};
/** Whether the app has a screen for `href` (a pet's page and a clinic form included). */
const hasScreen = (href: string) => SCREENS.includes(href) || /^\/(pets\/[^/]+|forms\/[0-9a-f-]{36})$/.test(href);

/** "Book an appointment" leads where the gateway says: the booking screen at a clinic that takes
 * online bookings, the pet page's request form (through the pets) otherwise. */
function helpLink(option: Schemas["HelpOption"]): { href: string; label: string } {
  if (option.kind === "book_appointment" && option.href === "/book") return { href: "/book", label: "Book a visit" };
  return { href: option.href, label: HELP_LABELS[option.kind] ?? option.kind };
}

export function Home() {
  const [home, setHome] = useState<Schemas["HomeScreen"] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    const load = async () => {
      const { data, error } = await api.GET("/api/v1/home");
      if (data) setHome(data);
      else setError(problem(error, "Your home screen could not be loaded. Please try again."));
    };
    load();
    window.addEventListener("petportal:changed", load);
    window.addEventListener("petportal:todo", load);
    return () => {
      window.removeEventListener("petportal:changed", load);
      window.removeEventListener("petportal:todo", load);
    };
  }, []);

  if (error) return <p class="error" role="alert">{error}</p>;
  if (!home) return <p role="status">Loading…</p>;
  const { todo, upcoming_appointments, get_help } = home;
  return (
    <>
      <h1>To-Do {todo.badge > 0 && <span class="count" aria-label={`${todo.badge} items`}>{todo.badge}</span>}</h1>
      {todo.items.length === 0 ? (
        <p class="empty">You're all caught up.</p>
      ) : (
        <ul class="cards" aria-label="To-Do">
          {todo.items.map((item) => (
            <li class="card">
              {hasScreen(item.action.href) ? <a href={item.action.href}>{item.title}</a> : <span>{item.title}</span>}
            </li>
          ))}
        </ul>
      )}
      <p><a href="/forms">Your clinic forms</a></p>
      <h2>Upcoming appointments</h2>
      {upcoming_appointments === null ? (
        <p class="empty">Your appointments could not be loaded just now.</p>
      ) : upcoming_appointments.length === 0 ? (
        <p class="empty">No upcoming appointments.</p>
      ) : (
        <ul class="cards">
          {upcoming_appointments.map((a) => (
            <AppointmentCard key={`${a.clinic_id}/${a.appointment_id}`} appointment={a} showPet />
          ))}
        </ul>
      )}
      <h2>Get help now</h2>
      <ul class="cards">
        {get_help
          .filter((option) => SCREENS.includes(option.href) || option.href === "/book")
          .map((option) => helpLink(option))
          .map((link) => (
            <li class="card">
              <a href={link.href}>{link.label}</a>
            </li>
          ))}
      </ul>
    </>
  );
}
