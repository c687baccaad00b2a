// A screen loaded only when it is opened (its own small file), so the first screen stays light.
import type { ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";

export function lazy<P extends object>(load: () => Promise<ComponentType<P>>): ComponentType<P> {
  let loaded: ComponentType<P> | null = null;
  return function Lazy(props: P) {
    const [Screen, setScreen] = useState<ComponentType<P> | null>(() => loaded);
    const [failed, setFailed] = useState(false);
    useEffect(() => {
      if (loaded) return;
      load()
        .then((screen) => {
          loaded = screen;
          setScreen(() => screen);
        })
        .catch(() => setFailed(true));
    }, []);
    if (failed) return <p class="error" role="alert">This screen could not be loaded. Please check your connection and reload.</p>;
    return Screen ? <Screen {...props} /> : <p role="status">Loading…</p>;
  };
}
