/** A server-rendered thumbnail fetched with the bearer token (an <img src> could not send it), or with another
 * source's credentials (`load`: a share link's token). */
import { useEffect, useState } from "react";
import { imageUrl } from "./api";

export function Thumb({ path, testId, size = 64, load = imageUrl }: {
  path: string;
  testId?: string;
  size?: number;
  load?: (path: string, signal?: AbortSignal) => Promise<string>;
}) {
  const [url, setUrl] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    const controller = new AbortController();
    let made: string | null = null;
    setUrl(null);
    setFailed(false);
    load(path, controller.signal)
      .then((u) => {
        made = u;
        if (controller.signal.aborted) URL.revokeObjectURL(u);
        else setUrl(u);
      })
      .catch(() => {
        if (!controller.signal.aborted) setFailed(true);
      });
    return () => {
      controller.abort();
      if (made) URL.revokeObjectURL(made);
    };
  }, [path]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <span className="imaging-thumb" style={{ width: size, height: size }} data-testid={testId} data-loaded={url ? "true" : "false"}>
      {url ? <img src={url} alt="" width={size} height={size} /> : failed ? <span className="imaging-thumb-none">—</span> : null}
    </span>
  );
}
