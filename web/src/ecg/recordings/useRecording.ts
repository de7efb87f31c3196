import { useCallback, useEffect, useState } from "react";
import { getRecording, getReport, type Recording, type Report } from "../api";

/** A recording, looked at again every 2 s while its analysis runs. */
export function useRecording(id: string) {
  const [recording, setRecording] = useState<Recording | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);

  const reload = useCallback(() => setTick((n) => n + 1), []);

  useEffect(() => {
    let live = true;
    getRecording(id)
      .then((r) => {
        if (!live) return;
        setRecording(r);
        setError(null);
      })
      .catch((err: unknown) => {
        if (live) setError(err);
      });
    return () => {
      live = false;
    };
  }, [id, tick]);

  const pending = recording?.status === "new" || recording?.status === "analysing";
  useEffect(() => {
    if (!pending) return;
    const timer = setTimeout(reload, 2000);
    return () => clearTimeout(timer);
  }, [pending, recording, reload]);

  return { recording, error, reload, setRecording };
}

/** The recording's report (null while none), looked at again while its PDF is still being rendered. */
export function useReport(recordingId: string, enabled: boolean) {
  const [report, setReport] = useState<Report | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);

  useEffect(() => {
    if (!enabled) {
      setReport(null);
      return;
    }
    let live = true;
    getReport(recordingId)
      .then((r) => {
        if (!live) return;
        setReport(r);
        setError(null);
      })
      .catch((err: unknown) => {
        if (live) setError(err);
      });
    return () => {
      live = false;
    };
  }, [recordingId, enabled, tick]);

  const rendering = report?.status === "signed" && !report.pdf_ready;
  useEffect(() => {
    if (!rendering) return;
    const timer = setTimeout(reload, 3000);
    return () => clearTimeout(timer);
  }, [rendering, report, reload]);

  return { report, error, reload, setReport };
}
