// The typed API client (types generated from the gateway's merged OpenAPI: scripts/openapi.mjs) and
// the session: the access token on every call, refreshed once on a 401, the refresh token rotated.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./generated/api";

export type Schemas = components["schemas"];
export type Session = Schemas["Session"];

const KEY = "petportal.session";

export function loadSession(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

let session = loadSession();
const listeners = new Set<() => void>();

export function currentSession(): Session | null {
  return session;
}

export function setSession(next: Session | null): void {
  session = next;
  if (next) localStorage.setItem(KEY, JSON.stringify(next));
  else localStorage.removeItem(KEY);
  listeners.forEach((listener) => listener());
}

export function onSession(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

let refreshing: Promise<boolean> | null = null;

export async function refresh(clinicId?: string): Promise<boolean> {
  const current = session;
  if (!current) return false;
  refreshing ??= (async () => {
    const response = await fetch("/api/v1/auth/refresh", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: current.refresh_token, ...(clinicId ? { clinic_id: clinicId } : {}) }),
    });
    if (!response.ok) {
      if (response.status === 401) setSession(null);
      return false;
    }
    setSession((await response.json()) as Session);
    return true;
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

const auth: Middleware = {
  onRequest({ request }) {
    if (session) request.headers.set("authorization", `Bearer ${session.access_token}`);
    return request;
  },
  async onResponse({ request, response }) {
    if (response.status !== 401 || !session || request.headers.get("x-retried")) return response;
    if (!(await refresh())) return response;
    const again = new Request(request, { headers: new Headers(request.headers) });
    again.headers.set("authorization", `Bearer ${session!.access_token}`);
    again.headers.set("x-retried", "1");
    return fetch(again);
  },
};

export const api = createClient<paths>({ baseUrl: "" });
api.use(auth);

/** The message to show for a failed call: the API's own words where it gave them. */
export function problem(error: unknown, fallback = "Something went wrong. Please try again."): string {
  if (error && typeof error === "object" && "detail" in error) {
    const detail = (error as { detail: unknown }).detail;
    if (typeof detail === "string") return detail;
  }
  return fallback;
}

/** Download a file that needs the access token (the ID card PDF). */
export async function download(path: string, filename: string): Promise<void> {
  const response = await fetch(path, { headers: session ? { authorization: `Bearer ${session.access_token}` } : {} });
  if (!response.ok) throw new Error(`download failed (${response.status})`);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A file that needs a token (a photo, a QR code), as an object URL for an <img>; null if refused. */
export async function objectUrl(path: string, token: string | undefined): Promise<string | null> {
  const response = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return response.ok ? URL.createObjectURL(await response.blob()) : null;
}

/** An image the parent's session may see (pet photos, photos in their conversation). */
export function imageUrl(path: string): Promise<string | null> {
  return objectUrl(path, session?.access_token);
}

/** Send a file as the request body (a pet photo, a photo in a message), with the access token. */
export async function putFile(path: string, file: File, method: "PUT" | "POST" = "PUT"): Promise<Response> {
  return fetch(path, {
    method,
    body: file,
    headers: { "content-type": file.type || "application/octet-stream", ...(session ? { authorization: `Bearer ${session.access_token}` } : {}) },
  });
}
