/**
 * One stack viewport on cornerstone3D: wheel / ↑↓ to page, left-drag window/level (or the chosen tool),
 * right-drag zoom, middle-drag pan, CT window presets, length in mm from PixelSpacing, cine.
 * The default export is loaded lazily by ViewerPage.
 */
import { useEffect, useRef, useState, type KeyboardEvent } from "react";
import { imageUrl } from "../api";
import { eventTarget } from "@cornerstonejs/core";
import { useI18n } from "../../i18n";
import {
  CoreEnums,
  askUncompressed,
  ToolEnums,
  clearMeasurements,
  initCornerstone,
  lengthMeasurements,
  mount,
  playCine,
  selectPrimaryTool,
  stopCine,
  type Measurement,
  type Mounted,
  type ToolKey,
} from "./cornerstone";

export interface Preset {
  key: string;
  center: number;
  width: number;
}

/** CT presets (centre / width, HU). */
export const CT_PRESETS: Preset[] = [
  { key: "lung", center: -600, width: 1500 },
  { key: "mediastinum", center: 40, width: 400 },
  { key: "bone", center: 300, width: 1500 },
  { key: "brain", center: 40, width: 80 },
  { key: "abdomen", center: 60, width: 400 },
];

export interface StackViewerProps {
  imageIds: string[];
  positions: string[];
  rendered: string[];
  modality: string;
  /** frames per second for cine (from FrameTime for a multi-frame, else 10) */
  fps: number;
  corners: { topLeft: string[]; topRight: string[] };
  /** fetches a rendered frame (default: the signed-in archive, bearer token) */
  loadImage?: (path: string, signal?: AbortSignal) => Promise<string>;
  /** on a frame the browser cannot decode, first ask the server for it decoded (WADO-RS only) */
  canAskUncompressed?: boolean;
}

export default function StackViewer({
  imageIds,
  positions,
  rendered,
  modality,
  fps: initialFps,
  corners,
  loadImage = imageUrl,
  canAskUncompressed = true,
}: StackViewerProps) {
  const { t } = useI18n();
  const tv = t.imaging.viewer;
  const element = useRef<HTMLDivElement>(null);
  const mounted = useRef<Mounted | null>(null);
  const [engineReady, setEngineReady] = useState(false);
  const [ready, setReady] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [index, setIndex] = useState(0);
  const [wl, setWl] = useState<{ c: number; w: number } | null>(null);
  const [zoom, setZoom] = useState(100);
  const [tool, setTool] = useState<ToolKey>("wl");
  const [preset, setPreset] = useState("default");
  const [invert, setInvert] = useState(false);
  const [playing, setPlaying] = useState(false);
  const [fps, setFps] = useState(initialFps);
  const [measurements, setMeasurements] = useState<Measurement[]>([]);
  // the browser could not decode (or load) an image: show the server's rendered JPEGs instead
  const [fallback, setFallback] = useState(false);
  const fallbackRef = useRef(false);
  fallbackRef.current = fallback;
  // first failure: ask the server for the frames uncompressed and try again; second: rendered JPEGs
  const [uncompressedTry, setUncompressedTry] = useState(false);
  const triedRef = useRef(false);
  triedRef.current = uncompressedTry;
  const failed = (imageId: string | undefined) => {
    if (canAskUncompressed && !triedRef.current && imageId) {
      askUncompressed(imageId);
      setUncompressedTry(true);
    } else setFallback(true);
  };

  // the engine and the viewport, once
  useEffect(() => {
    let cancelled = false;
    const el = element.current!;
    initCornerstone()
      .then(() => {
        if (cancelled) return;
        mounted.current = mount(el);
        setEngineReady(true);
      })
      .catch((err: unknown) => setError(String(err)));
    const onNewImage = (e: Event) => setIndex((e as CustomEvent<{ imageIdIndex: number }>).detail.imageIdIndex);
    const onVoi = (e: Event) => {
      const range = (e as CustomEvent<{ range?: { lower: number; upper: number } }>).detail.range;
      if (range) setWl({ c: Math.round((range.upper + range.lower) / 2), w: Math.round(range.upper - range.lower) });
    };
    const onCamera = () => {
      const vp = mounted.current?.viewport;
      if (vp) setZoom(Math.round(vp.getZoom() * 100));
    };
    el.addEventListener(CoreEnums.Events.STACK_NEW_IMAGE, onNewImage);
    el.addEventListener(CoreEnums.Events.VOI_MODIFIED, onVoi);
    el.addEventListener(CoreEnums.Events.CAMERA_MODIFIED, onCamera);
    const onAnnotation = () => setMeasurements(lengthMeasurements(el));
    const annotationEvents = [
      ToolEnums.Events.ANNOTATION_COMPLETED,
      ToolEnums.Events.ANNOTATION_MODIFIED,
      ToolEnums.Events.ANNOTATION_REMOVED,
    ];
    for (const name of annotationEvents) eventTarget.addEventListener(name, onAnnotation);
    const onLoadError = (e: Event) => {
      const id = (e as CustomEvent<{ imageId?: string }>).detail?.imageId;
      if (id && mounted.current?.viewport.getImageIds().includes(id)) failed(id);
    };
    eventTarget.addEventListener(CoreEnums.Events.IMAGE_LOAD_ERROR, onLoadError);
    const block = (e: Event) => e.preventDefault();
    el.addEventListener("contextmenu", block);
    return () => {
      cancelled = true;
      el.removeEventListener(CoreEnums.Events.STACK_NEW_IMAGE, onNewImage);
      el.removeEventListener(CoreEnums.Events.VOI_MODIFIED, onVoi);
      el.removeEventListener(CoreEnums.Events.CAMERA_MODIFIED, onCamera);
      el.removeEventListener("contextmenu", block);
      for (const name of annotationEvents) eventTarget.removeEventListener(name, onAnnotation);
      eventTarget.removeEventListener(CoreEnums.Events.IMAGE_LOAD_ERROR, onLoadError);
      mounted.current?.destroy();
      mounted.current = null;
    };
  }, []);

  // a new stack
  useEffect(() => {
    const m = mounted.current;
    if (!engineReady || !m || imageIds.length === 0) return;
    let cancelled = false;
    setReady(false);
    setError(null);
    setPlaying(false);
    setPreset("default");
    setInvert(false);
    setFallback(false);
    try {
      stopCine(m.element);
    } catch {
      // not playing
    }
    const middle = 0;
    m.viewport
      .setStack(imageIds, middle)
      .then(() => {
        if (cancelled) return;
        m.viewport.render();
        setReady(true); // an image is on screen (setStack resolves once the first one is loaded and shown)
        const voi = m.viewport.getProperties().voiRange;
        if (voi) setWl({ c: Math.round((voi.upper + voi.lower) / 2), w: Math.round(voi.upper - voi.lower) });
        setIndex(m.viewport.getCurrentImageIdIndex());
        setZoom(Math.round(m.viewport.getZoom() * 100));
        setMeasurements(lengthMeasurements(m.element));
      })
      .catch(() => {
        if (!cancelled) failed(imageIds[0]);
      });
    return () => {
      cancelled = true;
    };
  }, [engineReady, imageIds, uncompressedTry]); // eslint-disable-line react-hooks/exhaustive-deps

  // a new series starts over: as stored first
  useEffect(() => {
    setUncompressedTry(false);
    setIndex(0);
  }, [imageIds]);

  const vp = () => mounted.current?.viewport;

  const go = (delta: number, absolute = false) => {
    if (fallbackRef.current) {
      setIndex((i) => Math.max(0, Math.min(imageIds.length - 1, absolute ? delta : i + delta)));
      return;
    }
    const v = vp();
    if (!v) return;
    const n = v.getImageIds().length;
    const next = Math.max(0, Math.min(n - 1, absolute ? delta : v.getCurrentImageIdIndex() + delta));
    void v.setImageIdIndex(next);
  };

  const applyPreset = (p: Preset | null) => {
    if (fallback) {
      setWl(p ? { c: p.center, w: p.width } : null);
      setPreset(p?.key ?? "default");
      return;
    }
    const v = vp();
    if (!v) return;
    if (p) {
      v.setProperties({ voiRange: { lower: p.center - p.width / 2, upper: p.center + p.width / 2 } });
      setWl({ c: p.center, w: p.width });
    } else {
      v.resetProperties();
      v.setProperties({ invert });
      const voi = v.getProperties().voiRange;
      if (voi) setWl({ c: Math.round((voi.upper + voi.lower) / 2), w: Math.round(voi.upper - voi.lower) });
    }
    setPreset(p?.key ?? "default");
    v.render();
  };

  const chooseTool = (next: ToolKey) => {
    selectPrimaryTool(next, tool);
    setTool(next);
  };

  const toggleCine = () => {
    const m = mounted.current;
    if (!m) return;
    if (!fallback) {
      if (playing) stopCine(m.element);
      else playCine(m.element, fps);
    }
    setPlaying(!playing);
  };

  // cine over the server's renderings
  useEffect(() => {
    if (!fallback || !playing || imageIds.length < 2) return;
    const timer = window.setInterval(() => setIndex((i) => (i + 1) % imageIds.length), 1000 / fps);
    return () => window.clearInterval(timer);
  }, [fallback, playing, fps, imageIds.length]);

  const onKey = (e: KeyboardEvent<HTMLDivElement>) => {
    const keys: Record<string, () => void> = {
      ArrowUp: () => go(-1),
      ArrowLeft: () => go(-1),
      ArrowDown: () => go(1),
      ArrowRight: () => go(1),
      PageUp: () => go(-10),
      PageDown: () => go(10),
      Home: () => go(0, true),
      End: () => go(imageIds.length - 1, true),
    };
    const action = keys[e.key];
    if (action) {
      e.preventDefault();
      action();
    }
  };

  const isCT = modality === "CT";
  const count = imageIds.length;

  return (
    <div className="imaging-stack" data-testid="imaging-stack">
      <div className="imaging-toolbar" role="toolbar" aria-label={tv.tools}>
        <div className="segmented" role="radiogroup" aria-label={tv.tools} data-testid="imaging-tools">
          {(["wl", "pan", "zoom", "length"] as ToolKey[]).map((k) => (
            <button
              key={k}
              type="button"
              role="radio"
              aria-checked={tool === k}
              className={tool === k ? "active" : ""}
              data-testid={`imaging-tool-${k}`}
              onClick={() => chooseTool(k)}
            >
              {tv.tool[k]}
            </button>
          ))}
        </div>
        <div className="segmented" role="radiogroup" aria-label={tv.presets} data-testid="imaging-presets">
          <button type="button" role="radio" aria-checked={preset === "default"} className={preset === "default" ? "active" : ""} data-testid="imaging-preset-default" onClick={() => applyPreset(null)}>
            {tv.preset.default}
          </button>
          {(isCT ? CT_PRESETS : []).map((p) => (
            <button
              key={p.key}
              type="button"
              role="radio"
              aria-checked={preset === p.key}
              className={preset === p.key ? "active" : ""}
              data-testid={`imaging-preset-${p.key}`}
              title={`${p.center} / ${p.width}`}
              onClick={() => applyPreset(p)}
            >
              {tv.preset[p.key]}
            </button>
          ))}
        </div>
        <button
          type="button"
          className={`btn btn-secondary btn-small${invert ? " active" : ""}`}
          aria-pressed={invert}
          data-testid="imaging-invert"
          onClick={() => {
            vp()?.setProperties({ invert: !invert });
            vp()?.render();
            setInvert(!invert);
          }}
        >
          {tv.invert}
        </button>
        <button
          type="button"
          className="btn btn-secondary btn-small"
          data-testid="imaging-reset"
          onClick={() => {
            vp()?.resetCamera();
            applyPreset(null);
          }}
        >
          {tv.reset}
        </button>
        <span className="imaging-cine">
          <button type="button" className="btn btn-secondary btn-small" disabled={count < 2} onClick={toggleCine} data-testid="imaging-cine" data-playing={playing}>
            {playing ? tv.cineStop : tv.cinePlay}
          </button>
          <input
            type="number"
            min={1}
            max={60}
            value={fps}
            aria-label={tv.fps}
            data-testid="imaging-fps"
            onChange={(e) => setFps(Math.max(1, Math.min(60, Number(e.target.value) || 1)))}
          />
          <span className="muted">{tv.fps}</span>
        </span>
      </div>

      <div className="imaging-stage">
        <div
          className="imaging-viewport-wrap"
          tabIndex={0}
          onKeyDown={onKey}
          onMouseEnter={(e) => e.currentTarget.focus({ preventScroll: true })}
          data-testid="imaging-viewport-wrap"
        >
          <div
            ref={element}
            className="imaging-viewport"
            data-testid="imaging-viewport"
            data-ready={ready ? "true" : "false"}
            data-index={index}
            data-count={count}
            data-wc={wl?.c ?? ""}
            data-ww={wl?.w ?? ""}
            data-zoom={zoom}
            data-tool={tool}
            data-preset={preset}
            data-mode={fallback ? "rendered" : uncompressedTry ? "uncompressed" : "cornerstone"}
          />
          <div className="imaging-overlay tl">
            {corners.topLeft.map((s, i) => (
              <div key={i}>{s}</div>
            ))}
          </div>
          <div className="imaging-overlay tr">
            {corners.topRight.map((s, i) => (
              <div key={i}>{s}</div>
            ))}
          </div>
          <div className="imaging-overlay bl">
            {positions[index] ? <div data-testid="imaging-slice-position">{positions[index]}</div> : null}
            <div data-testid="imaging-image-index">{count > 0 ? tv.image(index + 1, count) : ""}</div>
          </div>
          <div className="imaging-overlay br" data-testid="imaging-wl">
            {wl ? <div>{tv.wl(wl.c, wl.w)}</div> : null}
            <div>{tv.zoom(zoom)}</div>
          </div>
          {fallback ? (
            <RenderedImage
              load={loadImage}
              path={`${rendered[index] ?? ""}${wl && preset !== "default" ? `&window=${wl.c},${wl.w}` : ""}`}
              onWheel={(dy) => go(dy > 0 ? 1 : -1)}
              onReady={() => setReady(true)}
              onError={(message) => setError(message)}
            />
          ) : null}
          {!ready && !error ? <div className="imaging-viewport-loading">{tv.loading}</div> : null}
          {error ? (
            <div className="imaging-viewport-loading state-error" role="alert" data-testid="imaging-viewer-error">
              {tv.renderError}: {error}
            </div>
          ) : null}
        </div>

        <aside className="imaging-side">
          {fallback ? (
            <p className="imaging-rendered-note small" data-testid="imaging-rendered-note">
              {tv.renderedNote}
            </p>
          ) : null}
          <h3>{tv.measurements}</h3>
          {measurements.length === 0 ? (
            <p className="muted small">{tv.noMeasurements}</p>
          ) : (
            <ol className="imaging-measurements" data-testid="imaging-measurements">
              {measurements.map((m) => (
                <li key={m.uid} data-testid="imaging-measurement" data-unit={m.unit} data-value={m.length.toFixed(2)}>
                  {m.length.toFixed(1)} {m.unit}
                  {m.unit !== "mm" ? <span className="muted small"> {tv.noSpacing}</span> : null}
                </li>
              ))}
            </ol>
          )}
          {measurements.length > 0 ? (
            <button
              type="button"
              className="btn btn-ghost btn-small"
              onClick={() => {
                if (mounted.current) clearMeasurements(mounted.current.element);
                vp()?.render();
                setMeasurements([]);
              }}
            >
              {tv.clearMeasurements}
            </button>
          ) : null}
          <p className="muted small imaging-hint">{tv.hint}</p>
        </aside>
      </div>
    </div>
  );
}

/** The server's rendering of one frame (/rendered JPEG), fitted; the wheel pages. */
function RenderedImage({ load, path, onWheel, onReady, onError }: {
  load: (path: string, signal?: AbortSignal) => Promise<string>;
  path: string;
  onWheel: (dy: number) => void;
  onReady: () => void;
  onError: (message: string) => void;
}) {
  const [url, setUrl] = useState<string | null>(null);
  const current = useRef<string | null>(null);
  useEffect(() => {
    const controller = new AbortController();
    load(path, controller.signal)
      .then((u) => {
        if (controller.signal.aborted) {
          URL.revokeObjectURL(u);
          return;
        }
        if (current.current) URL.revokeObjectURL(current.current);
        current.current = u;
        setUrl(u);
        onReady();
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) onError(err instanceof Error ? err.message : String(err));
      });
    return () => controller.abort();
  }, [path]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(
    () => () => {
      if (current.current) URL.revokeObjectURL(current.current);
    },
    [],
  );
  return (
    <div className="imaging-rendered" data-testid="imaging-rendered" onWheel={(e) => onWheel(e.deltaY)}>
      {url ? <img src={url} alt="" /> : null}
    </div>
  );
}
