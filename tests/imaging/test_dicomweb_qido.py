"""QIDO-RS with dicomweb-client: matching on PatientID, PatientName (wildcards, case, Chinese in the
alphabetic and the ideographic group, fuzzy), dates and times, accession, modalities, UID lists, referring
physician, description; includefield, limit/offset; series and instance levels; through the gateway and
directly at the service. Assertions look only at this module's studies (other tests share the archive)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from requests import HTTPError

from tests.conftest import auth
from tests.imaging.imaging_support import client, make_instance, quiet_pydicom, read, uid, value

quiet_pydicom()
TAG = uuid.uuid4().hex[:8].upper()


@pytest.fixture(scope="module")
def studies(platform, login) -> dict[str, Any]:
    """Four studies of 城关镇卫生院, stored with dicomweb-client's store_instances (one request)."""
    specs = {
        "s1": dict(patient_name="Wang^XiaoDong=王^小東", study_date="20240110", study_time="083000", modality="CT",
                   referring="Li^Ming", description="CT Chest 胸部平扫"),
        "s2": dict(patient_name="王小明", charset="GB18030", study_date="20240220", study_time="140000",
                   modality="MR", referring="Zhao^Lei", description="MR Brain"),
        "s3": dict(patient_name="ZHANG^SAN", study_date="20231231", study_time="090000", modality="CR",
                   description="Chest X-ray"),
        "s4": dict(patient_name="wang^xiaohong", study_date="20240110", study_time="173000", modality="DX"),
    }
    out: dict[str, Any] = {"uids": {}, "series": {}, "instances": {}}
    datasets = []
    for n, (key, spec) in enumerate(specs.items(), start=1):
        study, series = uid(), uid()
        out["uids"][key], out["series"][key] = study, series
        for number in (1, 2):
            ds = read(make_instance(study=study, series=series, patient_id=f"{TAG}-00{n}", accession=f"A{TAG}{n}",
                                    instance_number=number, seed=number, **spec))  # type: ignore[arg-type]
            out["instances"].setdefault(key, []).append(ds.SOPInstanceUID)
            datasets.append(ds)
    us_series = uid()
    datasets.append(read(make_instance(study=out["uids"]["s3"], series=us_series, patient_id=f"{TAG}-003",
                                       patient_name="ZHANG^SAN", modality="US", series_number=2,
                                       accession=f"A{TAG}3", study_date="20231231")))
    out["us_series"] = us_series
    result = client(platform.gateway_url, login("tech_a")).store_instances(datasets)
    assert len(result.ReferencedSOPSequence) == 9 and "FailedSOPSequence" not in result
    out["by_uid"] = {v: k for k, v in out["uids"].items()}
    return out


@pytest.fixture(params=["gateway", "service"])
def qido(request, platform, login):  # type: ignore[no-untyped-def]
    base = platform.gateway_url if request.param == "gateway" else platform.service_url("imaging")
    return client(base, login("tech_a"))


def found(studies: dict[str, Any], results: list[dict[str, Any]]) -> set[str]:
    """Which of this module's studies a result list holds."""
    return {studies["by_uid"][value(r, "0020000D")] for r in results if value(r, "0020000D") in studies["by_uid"]}


def search(c: Any, **filters: str) -> list[dict[str, Any]]:
    return list(c.search_for_studies(search_filters=filters))


@pytest.mark.parametrize(("filters", "expected"), [
    ({"PatientID": f"{TAG}-002"}, {"s2"}),
    ({"PatientID": f"{TAG}-00*"}, {"s1", "s2", "s3", "s4"}),
    ({"PatientID": f"{TAG}-0?1"}, {"s1"}),
    ({"PatientName": "王*"}, {"s1", "s2"}),
    ({"PatientName": "王小*"}, {"s2"}),
    ({"PatientName": "王小明"}, {"s2"}),
    ({"PatientName": "wang*"}, {"s1", "s4"}),
    ({"PatientName": "WANG^XIAO*"}, {"s1", "s4"}),
    ({"PatientName": "*xiao*"}, {"s1", "s4"}),
    ({"PatientName": "*小東"}, {"s1"}),
    ({"PatientName": "Wang^XiaoDong"}, {"s1"}),
    ({"PatientName": "Wang^XiaoDong=王^小東"}, {"s1"}),
    ({"PatientName": "=王^小東"}, {"s1"}),
    ({"PatientName": "zhang^san"}, {"s3"}),
    ({"PatientName": "xiao"}, set()),
    ({"PatientName": "xiao", "fuzzymatching": "true"}, {"s1", "s4"}),
    ({"PatientName": "小", "fuzzymatching": "true"}, {"s1"}),
    ({"StudyDate": "20240110"}, {"s1", "s4"}),
    ({"StudyDate": "20240101-20240131"}, {"s1", "s4"}),
    ({"StudyDate": "-20231231"}, {"s3"}),
    ({"StudyDate": "20240201-"}, {"s2"}),
    ({"StudyTime": "080000-090000", "StudyDate": "20240110"}, {"s1"}),
    ({"StudyDate": "20240110", "StudyTime": "170000-"}, {"s4"}),
    ({"AccessionNumber": f"A{TAG}2"}, {"s2"}),
    ({"ModalitiesInStudy": "US"}, {"s3"}),
    ({"ModalitiesInStudy": "CT,MR"}, {"s1", "s2"}),
    ({"ModalitiesInStudy": "CT\\MR"}, {"s1", "s2"}),
    ({"ReferringPhysicianName": "li^ming"}, {"s1"}),
    ({"ReferringPhysicianName": "Zhao*"}, {"s2"}),
    ({"StudyDescription": "*胸部*"}, {"s1"}),
    ({"StudyDescription": "mr*"}, {"s2"}),
    ({"00100020": f"{TAG}-004"}, {"s4"}),
])
def test_study_matching(studies, qido, filters, expected) -> None:
    restrict = {} if "PatientID" in filters or "00100020" in filters else {"PatientID": f"{TAG}-*"}
    assert found(studies, search(qido, **restrict, **filters)) == expected


def test_study_uid_list_and_counts(studies, qido) -> None:
    uids = studies["uids"]
    results = search(qido, StudyInstanceUID=f"{uids['s1']},{uids['s3']}")
    assert found(studies, results) == {"s1", "s3"}
    s3 = next(r for r in results if value(r, "0020000D") == uids["s3"])
    assert value(s3, "00201206") == 2 and value(s3, "00201208") == 3
    assert sorted(s3["00080061"]["Value"]) == ["CR", "US"]
    assert s3["00081190"]["Value"][0].endswith(f"/dicom-web/studies/{uids['s3']}")
    s1 = next(r for r in results if value(r, "0020000D") == uids["s1"])
    assert s1["00100010"]["Value"][0] == {"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小東"}


def test_includefield_and_all(studies, qido) -> None:
    base = search(qido, PatientID=f"{TAG}-001")[0]
    assert "00081030" not in base and "00100010" in base and "00080020" in base
    with_description = search(qido, PatientID=f"{TAG}-001", includefield="StudyDescription")[0]
    assert value(with_description, "00081030") == "CT Chest 胸部平扫"
    by_tag = search(qido, PatientID=f"{TAG}-001", includefield="00081030")[0]
    assert "00081030" in by_tag
    everything = next(iter(qido.search_for_studies(search_filters={"PatientID": f"{TAG}-001"}, fields=["all"])))
    assert {"00081030", "00100030", "00100040", "00200010"} <= set(everything)


def test_limit_and_offset(studies, qido) -> None:
    first = qido.search_for_studies(search_filters={"PatientID": f"{TAG}-*"}, limit=2, offset=0)
    second = qido.search_for_studies(search_filters={"PatientID": f"{TAG}-*"}, limit=2, offset=2)
    assert len(first) == 2 and len(second) == 2
    assert found(studies, first) | found(studies, second) == {"s1", "s2", "s3", "s4"}


def test_series_and_instance_levels(studies, qido) -> None:
    uids = studies["uids"]
    series = qido.search_for_series(uids["s3"])
    assert sorted(value(s, "00080060") for s in series) == ["CR", "US"]
    assert {value(s, "00201209") for s in series} == {1, 2}
    us = qido.search_for_series(search_filters={"Modality": "US", "PatientID": f"{TAG}-*"})
    assert [value(s, "0020000E") for s in us] == [studies["us_series"]]
    assert value(us[0], "00100020") == f"{TAG}-003"  # study attributes come with a study-less series search
    instances = qido.search_for_instances(uids["s1"], studies["series"]["s1"])
    assert sorted(value(i, "00080018") for i in instances) == sorted(studies["instances"]["s1"])
    assert {value(i, "00280010") for i in instances} == {8}
    assert instances[0]["00081190"]["Value"][0].endswith(f"/instances/{value(instances[0], '00080018')}")
    one = qido.search_for_instances(search_filters={"SOPInstanceUID": studies["instances"]["s2"][1]})
    assert [value(i, "0020000D") for i in one] == [uids["s2"]]
    by_number = qido.search_for_instances(uids["s2"], search_filters={"InstanceNumber": "2"})
    assert [value(i, "00080018") for i in by_number] == [studies["instances"]["s2"][1]]


def test_bad_queries(platform, login, studies) -> None:
    token = login("tech_a")
    base = f"{platform.gateway_url}/dicom-web"
    r = httpx.get(f"{base}/studies", params={"StudyDate": "2024-13-45"}, headers=auth(token))
    assert r.status_code == 400 and "StudyDate" in r.json()["detail"]
    r = httpx.get(f"{base}/studies", params={"NoSuchKeyword": "1"}, headers=auth(token))
    assert r.status_code == 400 and "NoSuchKeyword" in r.json()["detail"]
    r = httpx.get(f"{base}/studies", params={"Modality": "CT", "PatientID": f"{TAG}-001"}, headers=auth(token))
    assert r.status_code == 200 and r.headers["warning"].startswith("299 ")
    r = httpx.get(f"{base}/studies", headers={**auth(token), "Accept": "application/dicom+xml"})
    assert r.status_code == 406
    r = httpx.get(f"{base}/studies/{uid()}/series", headers=auth(token))
    assert r.status_code == 404


def test_client_errors_surface_as_http_errors(platform, login, studies) -> None:
    c = client(platform.gateway_url, login("tech_a"))
    with pytest.raises(HTTPError):
        c.search_for_series(uid())
