// An image that needs a token (pet photos, photos in messages): fetched, shown from an object URL,
// and the URL revoked when the image changes or goes away.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";

type Props = {
  path: string | null | undefined;
  fetchImage: (path: string) => Promise<string | null>;
  alt: string;
  class?: string;
  fallback?: ComponentChildren;
};

export function AuthImage({ path, fetchImage, alt, class: className, fallback = null }: Props) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    let url: string | null = null;
    setSrc(null);
    if (path) {
      fetchImage(path).then((objectUrl) => {
        if (live) {
          url = objectUrl;
          setSrc(objectUrl);
        } else if (objectUrl) URL.revokeObjectURL(objectUrl);
      });
    }
    return () => {
      live = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [path]);
  return src ? <img class={className} src={src} alt={alt} /> : <>{fallback}</>;
}
