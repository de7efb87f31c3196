/**
 * Where a study viewer gets its study from. The signed-in viewer reads the archive's DICOMweb with the bearer
 * token (WADO-RS frames); a share link reads the public share path with the share token (whole files over
 * WADO-URI-style image ids, the server's renderings for thumbnails). StudyViewer and StackViewer only see
 * this interface.
 */
import { TAG, imageUrl, listSeries, num, renderedFrame, seriesMetadata, seriesThumbnail, str, type DicomJson } from "../api";

export type CornerstoneModule = typeof import("./cornerstone");

export interface ImagingSource {
  /** changes when the source reads something else (the effects' key) */
  key: string;
  /** the study's series: DICOM JSON with SeriesInstanceUID, Modality, SeriesNumber, SeriesDescription,
   * NumberOfSeriesRelatedInstances */
  series(signal?: AbortSignal): Promise<DicomJson[]>;
  /** the metadata of one series' instances */
  instances(series: string, signal?: AbortSignal): Promise<DicomJson[]>;
  /** the cornerstone image id of one frame (frame numbers start at 1); may tell the loader the metadata */
  imageId(cs: CornerstoneModule, series: string, ds: DicomJson, frame: number): string;
  /** the server's rendering of one frame (a path for loadImage; `&window=c,w` may be appended) */
  rendered(series: string, sop: string, frame: number): string;
  /** the series' thumbnail (a path for loadImage) */
  seriesThumbnail(series: string): string;
  /** an image path fetched with this source's credentials, as an object URL the caller revokes */
  loadImage(path: string, signal?: AbortSignal): Promise<string>;
  /** whether the server can send frames decoded when the browser cannot decode them as stored */
  canAskUncompressed: boolean;
}

/** The signed-in archive (DICOMweb at /dicom-web, bearer token). */
export function dicomWebSource(study: string): ImagingSource {
  return {
    key: `dicomweb:${study}`,
    series: (signal) => listSeries(study, signal),
    instances: (series, signal) => seriesMetadata(study, series, signal),
    imageId: (cs, series, ds, frame) => {
      const sop = str(ds, TAG.SOPInstanceUID);
      cs.registerMetadata(cs.imageIdOf(study, series, sop, 1), ds);
      return cs.imageIdOf(study, series, sop, frame);
    },
    rendered: (series, sop, frame) => renderedFrame(study, series, sop, frame),
    seriesThumbnail: (series) => seriesThumbnail(study, series),
    loadImage: imageUrl,
    canAskUncompressed: true,
  };
}

/** Series-level DICOM JSON made from instances' metadata (for a source that has only the instances). */
export function seriesOf(instances: DicomJson[]): DicomJson[] {
  const bySeries = new Map<string, DicomJson[]>();
  for (const ds of instances) {
    const uid = str(ds, TAG.SeriesInstanceUID);
    const list = bySeries.get(uid) ?? [];
    list.push(ds);
    bySeries.set(uid, list);
  }
  const out: DicomJson[] = [];
  for (const [uid, list] of bySeries) {
    const first = list[0]!;
    const series: DicomJson = { [TAG.SeriesInstanceUID]: { vr: "UI", Value: [uid] } };
    for (const tag of [TAG.Modality, TAG.SeriesNumber, TAG.SeriesDescription]) if (first[tag]) series[tag] = first[tag]!;
    series[TAG.NumberOfSeriesRelatedInstances] = { vr: "IS", Value: [list.length] };
    out.push(series);
  }
  return out.sort((a, b) => (num(a, TAG.SeriesNumber) ?? 1e9) - (num(b, TAG.SeriesNumber) ?? 1e9));
}
