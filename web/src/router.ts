// A small history-API router: the app's few screens do not need a library.
import { useEffect, useState } from "preact/hooks";

const listeners = new Set<() => void>();

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  listeners.forEach((listener) => listener());
  window.scrollTo(0, 0);
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return path;
}

/** Links inside the app navigate without a reload. */
export function onLinkClick(event: MouseEvent): void {
  const target = (event.target as HTMLElement | null)?.closest("a");
  if (!target || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const href = target.getAttribute("href");
  if (!href || !href.startsWith("/") || target.hasAttribute("download") || target.target) return;
  event.preventDefault();
  navigate(href);
}
