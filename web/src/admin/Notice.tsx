/** A short confirmation at the top of a page ("已新建机构…"), gone after a few seconds. */
import { useCallback, useEffect, useState } from "react";

export function useNotice(): [string | null, (text: string) => void] {
  const [notice, setNotice] = useState<{ text: string; at: number } | null>(null);
  useEffect(() => {
    if (!notice) return;
    const timer = setTimeout(() => setNotice(null), 6000);
    return () => clearTimeout(timer);
  }, [notice]);
  const show = useCallback((text: string) => setNotice({ text, at: Date.now() }), []);
  return [notice?.text ?? null, show];
}

export function Notice({ text }: { text: string | null }) {
  if (!text) return null;
  return (
    <p className="adm-banner adm-banner-ok adm-notice" role="status" data-testid="admin-notice">
      {text}
    </p>
  );
}
