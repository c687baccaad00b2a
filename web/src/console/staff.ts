// The clinic console's session: a staff token (8 h, from email and password), kept apart from a
// parent's session in the same browser.
import createClient, { type Middleware } from "openapi-fetch";
import { objectUrl } from "../api";
import type { paths } from "../generated/api";

const KEY = "petportal.staff";

export type StaffSession = { access_token: string; expires_at: number };

export function staffSession(): StaffSession | null {
  try {
    const raw = localStorage.getItem(KEY);
    const session = raw ? (JSON.parse(raw) as StaffSession) : null;
    return session && session.expires_at > Date.now() ? session : null;
  } catch {
    return null;
  }
}

export function setStaffSession(session: StaffSession | null): void {
  if (session) localStorage.setItem(KEY, JSON.stringify(session));
  else localStorage.removeItem(KEY);
  window.dispatchEvent(new Event("petportal:staff"));
}

const auth: Middleware = {
  onRequest({ request }) {
    const session = staffSession();
    if (session) request.headers.set("authorization", `Bearer ${session.access_token}`);
    return request;
  },
  onResponse({ response }) {
    if (response.status === 401) setStaffSession(null);
    return response;
  },
};

export const staffApi = createClient<paths>({ baseUrl: "" });
staffApi.use(auth);

/** An image the staff session may see (photos in conversations, the clinic's QR code). */
export function staffImage(path: string): Promise<string | null> {
  return objectUrl(path, staffSession()?.access_token);
}
