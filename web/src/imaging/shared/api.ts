/**
 * Share links: the owner's side (create, list, revoke: /api/imaging/studies/{study}/shares, bearer token) and
 * the public, read-only path a link opens without signing in (/api/imaging/shared/..., the share token in the
 * X-Share-Token header; docs/imaging.md "Share links"). The page's link carries the token in its fragment
 * (/imaging/shared#token=...), which the browser never sends to a server.
 */
import { ApiError, send } from "../../api/errors";
import { apiJson } from "../../api/session";
import { TAG, str, type DicomJson } from "../api";
import type { CornerstoneModule, ImagingSource } from "../viewer/source";
import { seriesOf } from "../viewer/source";

const enc = encodeURIComponent;
export const SHARED = "/api/imaging/shared";

// ---- the owner's side ------------------------------------------------------------------------------------

export interface Share {
  id: string;
  study_uid: string;
  note: string;
  created_by: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  status: "active" | "expired" | "revoked";
  access_count: number;
  last_access_at: string | null;
}

export interface NewShare extends Share {
  token: string;
  /** the web page of the link, relative to this origin */
  link: string;
}

const JSON_HEADERS = { "Content-Type": "application/json" };

export function createShare(study: string, expiresAt: Date, note: string) {
  return apiJson<NewShare>(`/api/imaging/studies/${enc(study)}/shares`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({ expires_at: expiresAt.toISOString(), note }),
  });
}

export function listShares(study: string, signal?: AbortSignal) {
  return apiJson<{ items: Share[] }>(`/api/imaging/studies/${enc(study)}/shares`, { signal });
}

export function revokeShare(study: string, shareId: string) {
  return apiJson<Share>(`/api/imaging/studies/${enc(study)}/shares/${enc(shareId)}`, { method: "DELETE" });
}

/** The absolute link to hand out. */
export function absoluteLink(link: string): string {
  return `${window.location.origin}${link}`;
}

// ---- the public path ------------------------------------------------------------------------------------

export interface SharedStudy {
  share_id: string;
  study_uid: string;
  num_instances: number;
  expires_at: string | null;
  series: { series_uid: string; instances: { sop_instance_uid: string; frames: number | null; rows: number | null }[] }[];
}

/** The token of the page's link: `#token=...` (or `?token=...`). */
export function tokenFromLocation(loc: Location = window.location): string {
  const fromHash = new URLSearchParams(loc.hash.replace(/^#/, "")).get("token");
  return fromHash || new URLSearchParams(loc.search).get("token") || "";
}

/** The token travels in a header, so one URL answers differently per token (and per revocation): the
 * browser's HTTP cache, which keys by URL, must not answer for it (a cached 410 or another link's study). */
async function sharedFetch(token: string, path: string, accept: string, signal?: AbortSignal): Promise<Response> {
  const res = await send(path, { headers: { Accept: accept, "X-Share-Token": token }, signal, cache: "no-store" });
  if (!res.ok) throw await ApiError.from(res);
  return res;
}

export async function sharedStudy(token: string, signal?: AbortSignal): Promise<SharedStudy> {
  return (await (await sharedFetch(token, `${SHARED}/study`, "application/json", signal)).json()) as SharedStudy;
}

export async function sharedMetadata(token: string, signal?: AbortSignal): Promise<DicomJson[]> {
  return (await (await sharedFetch(token, `${SHARED}/metadata`, "application/dicom+json", signal)).json()) as DicomJson[];
}

/** Whether an error means the link no longer works (revoked or expired: 410). */
export function isGone(err: unknown): boolean {
  return err instanceof ApiError && err.status === 410;
}

const instancePath = (series: string, sop: string) => `${SHARED}/series/${enc(series)}/instances/${enc(sop)}`;

/**
 * The viewer's source for a share link: the study's metadata, read once; images as whole files (the
 * browser decodes them) or the server's renderings. `onGone` is told when a request finds the link revoked
 * or expired while the page is open.
 */
export function sharedSource(token: string, instances: DicomJson[], onGone: () => void): ImagingSource {
  const bySeries = new Map<string, DicomJson[]>();
  for (const ds of instances) {
    const uid = str(ds, TAG.SeriesInstanceUID);
    bySeries.set(uid, [...(bySeries.get(uid) ?? []), ds]);
  }
  const series = seriesOf(instances);
  return {
    key: `shared:${token.slice(0, 8)}:${instances.length}`,
    series: async () => series,
    instances: async (uid) => bySeries.get(uid) ?? [],
    imageId: (cs: CornerstoneModule, uid, ds, frame) => {
      cs.setSourceHeaders(`${SHARED}/`, { "X-Share-Token": token });
      return cs.fileImageIdOf(instancePath(uid, str(ds, TAG.SOPInstanceUID)), frame);
    },
    rendered: (uid, sop, frame) => `${instancePath(uid, sop)}/rendered?frame=${frame}&quality=90`,
    seriesThumbnail: (uid) => {
      const images = (bySeries.get(uid) ?? []).filter((ds) => ds[TAG.Rows]);
      const middle = images[Math.floor(images.length / 2)];
      return middle ? `${instancePath(uid, str(middle, TAG.SOPInstanceUID))}/rendered?viewport=96,96&quality=80` : "";
    },
    loadImage: async (path, signal) => {
      try {
        const res = await sharedFetch(token, path, "image/jpeg", signal);
        return URL.createObjectURL(await res.blob());
      } catch (err) {
        if (isGone(err)) onGone();
        throw err;
      }
    },
    canAskUncompressed: false,
  };
}
