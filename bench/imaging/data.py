"""The generated data set, identical bytes for both archives: a few large CT series plus many small filler studies."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROOT = "1.2.826.0.1.3680043.10.543."  # UIDs of this benchmark
SURNAMES = [("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"),
            ("Zhao", "赵"), ("Huang", "黄"), ("Zhou", "周"), ("Wu", "吴")]


@dataclass
class Instance:
    study: str
    series: str
    sop: str
    data: bytes


@dataclass
class DataSet:
    ct: list[Instance] = field(default_factory=list)          # the large series, in study order
    filler: list[Instance] = field(default_factory=list)      # one instance per filler study
    filler_patients: list[str] = field(default_factory=list)
    filler_dates: list[date] = field(default_factory=list)

    def ct_series(self) -> list[tuple[str, str, list[str]]]:
        out: dict[tuple[str, str], list[str]] = {}
        for i in self.ct:
            out.setdefault((i.study, i.series), []).append(i.sop)
        return [(s, se, sops) for (s, se), sops in out.items()]


def _part10(*, study: str, series: str, sop: str, patient_id: str, name: str, study_date: date, number: int,
            rows: int, pixels: np.ndarray, accession: str, description: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = ROOT + "1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: the names carry Chinese characters
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientID = patient_id
    ds.PatientName = name
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.StudyDate = study_date.strftime("%Y%m%d")
    ds.StudyTime = "101500"
    ds.AccessionNumber = accession
    ds.StudyID = "1"
    ds.StudyDescription = description
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [0, 0, number * 1.25]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.7, 0.7]
    ds.SliceThickness = 1.25
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = rows
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.PixelData = pixels.astype("<u2").tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def generate(ct_studies: int = 3, ct_instances: int = 100, filler_studies: int = 2000, seed: int = 2026,
             ct_size: int = 512, filler_size: int = 64) -> DataSet:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    out = DataSet()
    yy, xx = np.mgrid[0:ct_size, 0:ct_size]
    body = ((xx - ct_size / 2) ** 2 + (yy - ct_size / 2) ** 2) < (ct_size * 0.42) ** 2
    for s in range(ct_studies):
        study, series = generate_uid(ROOT), generate_uid(ROOT)
        sur, han = SURNAMES[s % len(SURNAMES)]
        for n in range(1, ct_instances + 1):
            img = np.where(body, 1024 + 40, 0) + nrng.integers(0, 60, size=(ct_size, ct_size))
            img[ct_size // 3: ct_size // 3 + 40 + n % 30, ct_size // 2: ct_size // 2 + 50] = 1024 + 400
            sop = generate_uid(ROOT)
            out.ct.append(Instance(study, series, sop, _part10(
                study=study, series=series, sop=sop, patient_id=f"CT{s:04d}",
                name=f"{sur}^Ct{s}={han}^影像", study_date=date(2025, 6, 1 + s), number=n, rows=ct_size,
                pixels=img, accession=f"ACCCT{s:04d}", description="CT CHEST")))
    patients = max(1, filler_studies // 4)
    start = date(2024, 1, 1)
    small = nrng.integers(0, 4096, size=(filler_size, filler_size))
    for f in range(filler_studies):
        p = rng.randrange(patients)
        sur, han = SURNAMES[p % len(SURNAMES)]
        d = start + timedelta(days=rng.randrange(730))
        study, series, sop = generate_uid(ROOT), generate_uid(ROOT), generate_uid(ROOT)
        out.filler_patients.append(f"PID{p:05d}")
        out.filler_dates.append(d)
        out.filler.append(Instance(study, series, sop, _part10(
            study=study, series=series, sop=sop, patient_id=f"PID{p:05d}", name=f"{sur}^Given{p}={han}^名{p}",
            study_date=d, number=1, rows=filler_size, pixels=small, accession=f"ACC{f:06d}",
            description="DX CHEST")))
    return out

