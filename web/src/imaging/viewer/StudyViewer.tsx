/**
 * A study's series as a strip of thumbnails and the chosen one in a stack viewer (cornerstone3D, loaded on
 * demand), reading through an ImagingSource: the signed-in archive (ViewerPage) or a share link
 * (SharedViewerPage). Instances are ordered by Instance Number (then slice position); a multi-frame instance
 * contributes each of its frames.
 */
import { lazy, Suspense, useEffect, useState } from "react";
import { useI18n } from "../../i18n";
import { EmptyState, Loading } from "../../ui/states";
import { TAG, num, nums, str, type DicomJson } from "../api";
import { Thumb } from "../Thumb";
import type { ImagingSource } from "./source";

const StackViewer = lazy(() => import("./StackViewer"));
const NON_IMAGE = new Set(["SR", "PR", "KO", "DOC", "REG", "SEG", "RTSTRUCT", "RTPLAN"]);

interface Stack {
  imageIds: string[];
  /** per image: slice location and thickness, for the overlay */
  positions: string[];
  /** per image: the server's rendered JPEG, shown when the browser cannot decode the image */
  rendered: string[];
  modality: string;
  fps: number;
}

export interface Corners {
  topLeft: string[];
  topRight: string[];
}

export function StudyViewer({ source, corners, onError }: {
  source: ImagingSource;
  /** the overlay's corner text for the series on screen */
  corners: (series: DicomJson | undefined) => Corners;
  onError: (err: unknown) => void;
}) {
  const { t } = useI18n();
  const tv = t.imaging.viewer;
  const [series, setSeries] = useState<DicomJson[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [stack, setStack] = useState<Stack | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    setSeries(null);
    source
      .series(controller.signal)
      .then((list) => {
        const sorted = [...list].sort((a, b) => (num(a, TAG.SeriesNumber) ?? 1e9) - (num(b, TAG.SeriesNumber) ?? 1e9));
        setSeries(sorted);
        const first = sorted.find((x) => !NON_IMAGE.has(str(x, TAG.Modality))) ?? sorted[0];
        setSelected((cur) => cur ?? (first ? str(first, TAG.SeriesInstanceUID) : null));
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) onError(err);
      });
    return () => controller.abort();
  }, [source.key]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    if (!selected) return;
    const controller = new AbortController();
    setStack(null);
    Promise.all([source.instances(selected, controller.signal), import("./cornerstone")])
      .then(([instances, cs]) => {
        const sorted = [...instances].sort(byPosition);
        const imageIds: string[] = [];
        const positions: string[] = [];
        const rendered: string[] = [];
        let frameTime: number | null = null;
        for (const ds of sorted) {
          if (num(ds, TAG.Rows) == null) continue; // no pixel data
          const sop = str(ds, TAG.SOPInstanceUID);
          const frames = num(ds, TAG.NumberOfFrames) ?? 1;
          const z = num(ds, TAG.SliceLocation) ?? nums(ds, TAG.ImagePositionPatient)[2] ?? null;
          const thickness = num(ds, TAG.SliceThickness);
          const label = [z != null ? tv.sliceLocation(round1(z)) : "", thickness ? tv.sliceThickness(round1(thickness)) : ""]
            .filter(Boolean)
            .join(" · ");
          for (let f = 1; f <= frames; f++) {
            imageIds.push(source.imageId(cs, selected, ds, f));
            positions.push(frames > 1 ? tv.frame(f, frames) : label);
            rendered.push(source.rendered(selected, sop, f));
          }
          if (frames > 1) frameTime ??= num(ds, TAG.FrameTime);
        }
        const modality = str(sorted[0], TAG.Modality);
        setStack({ imageIds, positions, rendered, modality, fps: frameTime && frameTime > 0 ? Math.min(60, Math.round(1000 / frameTime)) : 10 });
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) onError(err);
      });
    return () => controller.abort();
  }, [source.key, selected]); // eslint-disable-line react-hooks/exhaustive-deps

  const current = series?.find((s) => str(s, TAG.SeriesInstanceUID) === selected);

  return (
    <div className="imaging-viewer" data-testid="imaging-viewer">
      <nav className="imaging-series-strip" aria-label={tv.series} data-testid="imaging-series-strip">
        {series === null ? <Loading /> : null}
        {series?.map((s) => {
          const uid = str(s, TAG.SeriesInstanceUID);
          return (
            <button
              key={uid}
              type="button"
              className={`imaging-series${uid === selected ? " active" : ""}`}
              onClick={() => setSelected(uid)}
              data-testid="imaging-series"
              data-series={uid}
              aria-pressed={uid === selected}
            >
              <Thumb path={source.seriesThumbnail(uid)} load={source.loadImage} size={88} testId="imaging-series-thumb" />
              <span className="imaging-series-label">
                {str(s, TAG.Modality)} {num(s, TAG.SeriesNumber) ?? ""}
                <span className="muted"> · {num(s, TAG.NumberOfSeriesRelatedInstances) ?? ""}</span>
              </span>
              <span className="imaging-series-desc muted">{str(s, TAG.SeriesDescription)}</span>
            </button>
          );
        })}
      </nav>
      <div className="imaging-main">
        {series && series.length === 0 ? (
          <EmptyState title={tv.noImages} />
        ) : stack === null ? (
          <Loading label={tv.loading} />
        ) : stack.imageIds.length === 0 ? (
          <EmptyState title={tv.noImages} />
        ) : (
          <Suspense fallback={<Loading label={tv.loading} />}>
            <StackViewer
              imageIds={stack.imageIds}
              positions={stack.positions}
              rendered={stack.rendered}
              modality={stack.modality}
              fps={stack.fps}
              corners={corners(current)}
              loadImage={source.loadImage}
              canAskUncompressed={source.canAskUncompressed}
            />
          </Suspense>
        )}
      </div>
    </div>
  );
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** Instance Number, then the slice position along z, then SOP Instance UID. */
function byPosition(a: DicomJson, b: DicomJson): number {
  const na = num(a, TAG.InstanceNumber);
  const nb = num(b, TAG.InstanceNumber);
  if (na != null && nb != null && na !== nb) return na - nb;
  const za = nums(a, TAG.ImagePositionPatient)[2] ?? num(a, TAG.SliceLocation);
  const zb = nums(b, TAG.ImagePositionPatient)[2] ?? num(b, TAG.SliceLocation);
  if (za != null && zb != null && za !== zb) return za - zb;
  return str(a, TAG.SOPInstanceUID).localeCompare(str(b, TAG.SOPInstanceUID));
}
