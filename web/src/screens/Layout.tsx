import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, currentSession, refresh } from "../api";
import { navigate } from "../router";

const TABS = [
  { href: "/", label: "Home" },
  { href: "/pets", label: "Pets" },
  { href: "/conversation", label: "Conversations" },
  { href: "/account", label: "Account" },
];

/** The badge: the To-Do list's count, kept fresh while the app is open. */
export function useBadge(): number {
  const [badge, setBadge] = useState(0);
  useEffect(() => {
    let stopped = false;
    let last: number | null = null;
    const load = async () => {
      const { data } = await api.GET("/api/v1/todo");
      if (!data || stopped) return;
      setBadge(data.badge);
      // The list changed under the open screen (a new message, an opt-out): let it reload.
      if (last !== null && data.badge !== last) window.dispatchEvent(new Event("petportal:todo"));
      last = data.badge;
    };
    load();
    const timer = setInterval(load, 10_000);
    window.addEventListener("petportal:changed", load);
    return () => {
      stopped = true;
      clearInterval(timer);
      window.removeEventListener("petportal:changed", load);
    };
  }, []);
  return badge;
}

export function changed(): void {
  window.dispatchEvent(new Event("petportal:changed"));
}

export function Layout({ path, children }: { path: string; children: ComponentChildren }) {
  const badge = useBadge();
  const session = currentSession();
  const clinics = session?.clients ?? [];

  async function switchClinic(clinicId: string) {
    if (await refresh(clinicId)) {
      navigate("/", true);
      changed();
    }
  }

  return (
    <div class="shell">
      <a class="skip" href="#main">Skip to content</a>
      <header>
        <span class="brand">Pet Portal</span>
        {clinics.length > 1 && (
          <label class="clinic">
            <span class="visually-hidden">Clinic</span>
            <select value={session?.clinic_id} onChange={(e) => switchClinic((e.target as HTMLSelectElement).value)}>
              {clinics.map((c) => (
                <option value={c.clinic_id}>{c.clinic_id}</option>
              ))}
            </select>
          </label>
        )}
      </header>
      <main id="main">{children}</main>
      <nav aria-label="Main">
        {TABS.map((tab) => {
          const current = tab.href === "/" ? path === "/" : path.startsWith(tab.href);
          return (
            <a href={tab.href} aria-current={current ? "page" : undefined}>
              {tab.label}
              {tab.href === "/" && badge > 0 && (
                <span class="badge" aria-label={`${badge} to do`}>{badge}</span>
              )}
            </a>
          );
        })}
      </nav>
    </div>
  );
}
