/**
 * cornerstone3D set up once for the app: the core (WebGL, or its CPU fallback on a PC without it), the DICOM
 * image loader reading our WADO-RS frames with the bearer token (or, for a registered URL part such as a share
 * link's public path, that source's own headers), and the tools the viewer offers.
 * Loaded only with the viewer (a separate chunk), so the rest of the app stays small.
 */
import { Enums, RenderingEngine, cache, getRenderingEngine, init as coreInit, type Types } from "@cornerstonejs/core";
import {
  Enums as ToolEnums,
  LengthTool,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  addTool,
  annotation,
  init as toolsInit,
  utilities as toolUtilities,
} from "@cornerstonejs/tools";
import { init as loaderInit, wadors } from "@cornerstonejs/dicom-image-loader";
import { freshAccessToken } from "../../api/session";
import type { DicomJson } from "../api";

export const ENGINE_ID = "th-imaging";
export const VIEWPORT_ID = "th-stack";
export const GROUP_ID = "th-imaging-tools";

export type ToolKey = "wl" | "pan" | "zoom" | "length";
export const TOOL_NAMES: Record<ToolKey, string> = {
  wl: WindowLevelTool.toolName,
  pan: PanTool.toolName,
  zoom: ZoomTool.toolName,
  length: LengthTool.toolName,
};
const { MouseBindings } = ToolEnums;
/** Bindings each tool keeps whichever tool has the left button. */
const PAN_BINDINGS = [{ mouseButton: MouseBindings.Auxiliary }];
const ZOOM_BINDINGS = [{ mouseButton: MouseBindings.Secondary }];
const FIXED: Record<string, { mouseButton: number }[]> = {
  [PanTool.toolName]: PAN_BINDINGS,
  [ZoomTool.toolName]: ZOOM_BINDINGS,
};

let ready: Promise<void> | null = null;

/** Image-id prefixes (a series) whose frames are asked uncompressed: the browser could not decode them as
 * stored (deflate, big endian, a codec it lacks), so the server decodes them (explicit VR little endian). */
const uncompressed = new Set<string>();
const UNCOMPRESSED_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1';

/** Headers of image sources that are not the signed-in DICOMweb (a share link): URL part → headers. */
const sourceHeaders = new Map<string, Record<string, string>>();

/** Requests whose image id contains `urlPart` carry these headers instead of the bearer token (null: forget). */
export function setSourceHeaders(urlPart: string, headers: Record<string, string> | null): void {
  if (headers) sourceHeaders.set(urlPart, headers);
  else sourceHeaders.delete(urlPart);
}

export function askUncompressed(imageId: string): void {
  const at = imageId.indexOf("/instances/");
  uncompressed.add(at > 0 ? imageId.slice(0, at) : imageId);
  cache.purgeCache();
}

export function initCornerstone(): Promise<void> {
  ready ??= (async () => {
    await coreInit();
    // a township PC has little memory to spare: keep at most 384 MB of decoded images
    cache.setMaxCacheSize(384 * 1024 * 1024);
    loaderInit({
      maxWebWorkers: Math.max(1, Math.min(2, (navigator.hardwareConcurrency || 2) - 1)),
      beforeSend: async (_xhr: XMLHttpRequest, imageId: string): Promise<Record<string, string>> => {
        for (const [part, headers] of sourceHeaders) if (imageId.includes(part)) return { ...headers };
        const token = await freshAccessToken();
        const headers: Record<string, string> = {};
        for (const prefix of uncompressed) if (imageId.includes(prefix.replace(/^wadors:/, ""))) headers.Accept = UNCOMPRESSED_ACCEPT;
        if (token) headers.Authorization = `Bearer ${token}`;
        return headers;
      },
    });
    toolsInit();
    for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool]) addTool(tool);
  })();
  return ready;
}

/** The WADO-RS image id of a frame (frame numbers start at 1). */
export function imageIdOf(study: string, series: string, sop: string, frame: number): string {
  const e = encodeURIComponent;
  return `wadors:${window.location.origin}/dicom-web/studies/${e(study)}/series/${e(series)}/instances/${e(sop)}/frames/${frame}`;
}

/** The WADO-URI-style image id of a frame of a whole Part 10 file at `url` (the loader fetches the file once). */
export function fileImageIdOf(url: string, frame: number): string {
  const absolute = url.startsWith("/") ? `${window.location.origin}${url}` : url;
  return `wadouri:${absolute}${absolute.includes("?") ? "&" : "?"}frame=${frame}`;
}

/** Give the loader an instance's DICOM JSON (from the series metadata) so it needs no further request. */
export function registerMetadata(imageId: string, json: DicomJson): void {
  wadors.metaDataManager.add(imageId, json as unknown as Parameters<typeof wadors.metaDataManager.add>[1]);
}

export interface Mounted {
  viewport: Types.IStackViewport;
  element: HTMLDivElement;
  destroy: () => void;
}

export function mount(element: HTMLDivElement): Mounted {
  const engine = getRenderingEngine(ENGINE_ID) ?? new RenderingEngine(ENGINE_ID);
  engine.enableElement({
    viewportId: VIEWPORT_ID,
    type: Enums.ViewportType.STACK,
    element,
    defaultOptions: { background: [0, 0, 0] as Types.Point3 },
  });
  ToolGroupManager.destroyToolGroup(GROUP_ID);
  const group = ToolGroupManager.createToolGroup(GROUP_ID)!;
  for (const name of [WindowLevelTool.toolName, PanTool.toolName, ZoomTool.toolName, StackScrollTool.toolName, LengthTool.toolName]) {
    group.addTool(name);
  }
  group.addViewport(VIEWPORT_ID, ENGINE_ID);
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: PAN_BINDINGS });
  group.setToolActive(ZoomTool.toolName, { bindings: ZOOM_BINDINGS });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  group.setToolPassive(LengthTool.toolName);
  const viewport = engine.getViewport(VIEWPORT_ID) as Types.IStackViewport;
  const resize = new ResizeObserver(() => engine.resize(true, true));
  resize.observe(element);
  return {
    viewport,
    element,
    destroy: () => {
      resize.disconnect();
      try {
        toolUtilities.cine.stopClip(element);
      } catch {
        // not playing
      }
      ToolGroupManager.destroyToolGroup(GROUP_ID);
      engine.disableElement(VIEWPORT_ID);
    },
  };
}

/** Give the left button to one tool; the others keep their fixed buttons (or stay passive). */
export function selectPrimaryTool(next: ToolKey, previous: ToolKey): void {
  const group = ToolGroupManager.getToolGroup(GROUP_ID);
  if (!group || next === previous) return;
  const prevName = TOOL_NAMES[previous];
  group.setToolPassive(prevName, { removeAllBindings: [{ mouseButton: MouseBindings.Primary }] });
  const fixed = FIXED[prevName] ?? [];
  if (fixed.length > 0) group.setToolActive(prevName, { bindings: fixed });
  group.setToolActive(TOOL_NAMES[next], { bindings: [{ mouseButton: MouseBindings.Primary }] });
}

export interface Measurement {
  uid: string;
  length: number;
  unit: string;
}

/** The length annotations drawn on this element, with their cached lengths (mm when PixelSpacing is known). */
export function lengthMeasurements(element: HTMLDivElement): Measurement[] {
  const list = annotation.state.getAnnotations(LengthTool.toolName, element) ?? [];
  const out: Measurement[] = [];
  for (const a of list) {
    const stats = (a.data as { cachedStats?: Record<string, { length?: number | null; unit?: string | null }> }).cachedStats ?? {};
    const first = Object.values(stats).find((s) => typeof s?.length === "number");
    if (first && typeof first.length === "number") {
      out.push({ uid: a.annotationUID ?? "", length: first.length, unit: first.unit ?? "px" });
    }
  }
  return out;
}

export function clearMeasurements(element: HTMLDivElement): void {
  for (const a of annotation.state.getAnnotations(LengthTool.toolName, element) ?? []) {
    if (a.annotationUID) annotation.state.removeAnnotation(a.annotationUID);
  }
}

export function playCine(element: HTMLDivElement, fps: number): void {
  toolUtilities.cine.playClip(element, { framesPerSecond: fps, loop: true });
}

export function stopCine(element: HTMLDivElement): void {
  toolUtilities.cine.stopClip(element);
}

export { Enums as CoreEnums, ToolEnums };
