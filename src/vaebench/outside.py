"""Models and samples vaebench did not train: the config's `evaluate:` entries.

An entry is one of
  pythae:  a folder `AutoModel.load_from_folder` reads (Pythae's model.pt, model_config.json,
           and, for custom networks, their pickles), or a vaebench publication;
  hub:     a Hugging Face Hub repository holding such a folder, fetched at a pinned revision
           by the local rule fetch_model (the only rule that reaches the Hub);
  samples: images from any generator, a folder of image files or a .npy array (N, 3, S, S)
           of uint8: set-level metrics only, against the study's reference set.

A model entry becomes a run of its own, `<name>/evaluated`: the import job copies its files
into results/<study>/runs/<name>/evaluated/model with a record (vaebench.json) that says what
it is, and from there it goes through exactly the jobs a trained run goes through after
training (reconstruction, every sampler of its family, per-image, generation and round-trip
metrics) and into every table. Its family comes from vaebench's own record when the folder
is a vaebench run or publication, else from the class of Pythae's model_config.json through
the family registry; a class the registry lacks is `families.OTHER` (its encoder's embedding
decoded as is, the gmm sampler only, no posterior quantities).

Loading a Pythae folder runs the code its pickles hold. A folder with pickles is refused in
one line unless its entry says `trust_pickled_code: true`; a vaebench publication needs no
trust: its model.safetensors and record rebuild the networks from vaebench's code
(vaebench.safe_weights), and the import copies those files only. Everything checked here is
read without unpickling anything (JSON files, file names, .npy headers), so Snakemake can
check the entries when it parses the config; only the evaluation jobs load a model.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vaebench import VaebenchError, families

KINDS = ("pythae", "hub", "samples")
SUPPLIED = "supplied"  # the sampler name of a samples entry's generation row
PENDING = "?"  # the family key of a hub entry until fetch_model has fetched it
PICKLES = (".pkl", ".pickle")
SAFE = ("model.safetensors", "vaebench.json", "model_config.json")  # a vaebench publication
IMAGES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# what each kind is called in table notes
WHAT = {"pythae": "a Pythae folder", "hub": "a Hub repository", "samples": "samples"}


@dataclass(frozen=True)
class Evaluated:
    """One `evaluate:` entry, resolved. It stands where a config.Run stands (id, model, beta,
    seed, label) so that the run table's functions take either; `model` is its name, which
    keys its table rows, and `family_key` the registry family its model belongs to."""

    name: str
    kind: str
    source: str  # the folder or .npy path, or the Hub repo id
    seed: int
    revision: str | None = None
    trust_pickled_code: bool = False
    family_key: str | None = None  # None: samples; families.OTHER.key: a class vaebench lacks
    pythae_class: str | None = None
    n_images: int | None = None  # samples: how many the entry holds
    beta: float | None = None  # its KL weight, where its config or record has one
    in_sweep: bool = False

    @property
    def id(self) -> str:
        return f"{self.name}/evaluated"

    @property
    def model(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return self.name

    @property
    def family(self) -> str:
        return families.lookup(self.family_key).label if self.family_key else "samples"


def entries(config: dict[str, Any], source: str = "config") -> list[Evaluated]:
    """The `evaluate:` entries, checked (one line naming the entry for each fault)."""
    size, seed = config["dataset"]["image_size"], min(config["seeds"])
    out, names = [], set()
    for i, e in enumerate(config.get("evaluate") or []):
        where = f"{source}: evaluate entry {e.get('name', i)!r}"
        kinds = [k for k in KINDS if k in e]
        if len(kinds) != 1:
            raise VaebenchError(f"{where}: give exactly one of {', '.join(KINDS)} (it has "
                                f"{', '.join(kinds) or 'none'})")  # fmt: skip
        kind, name = kinds[0], e["name"]
        if name in names:
            raise VaebenchError(f"{where}: the name is used by another entry; rename one")
        taken = {f.key: f.label for f in families.REGISTRY}
        if name in taken or name in taken.values():
            raise VaebenchError(f"{where}: the name clashes with the model family {name!r} "
                                "(its runs' ids and rows); choose another name")  # fmt: skip
        if kind != "hub" and "revision" in e:
            raise VaebenchError(f"{where}: 'revision' applies to hub entries only")
        names.add(name)
        common = dict(name=name, kind=kind, source=e[kind], seed=int(e.get("seed", seed)),
                      trust_pickled_code=bool(e.get("trust_pickled_code", False)))  # fmt: skip
        if kind == "samples":
            n = count_samples(Path(e[kind]), size, where)
            out.append(Evaluated(**common, n_images=n))
        elif kind == "pythae":
            key, cls, beta = check_folder(Path(e[kind]), size, common["trust_pickled_code"],
                                          where)  # fmt: skip
            out.append(Evaluated(**common, family_key=key, pythae_class=cls, beta=beta))
        else:  # its family is known once fetch_model has fetched it (`resolve`)
            out.append(Evaluated(**common, revision=e.get("revision", "main"),
                                 family_key=PENDING))  # fmt: skip
    return out


def resolve(entry: Evaluated, folder: str | Path, size: int) -> Evaluated:
    """A hub entry with its family, class and β, from the folder fetch_model fetched."""
    if entry.family_key != PENDING:
        return entry
    where = f"evaluate entry {entry.name!r} ({entry.source})"
    key, cls, beta = check_folder(Path(folder), size, entry.trust_pickled_code, where)
    return replace(entry, family_key=key, pythae_class=cls, beta=beta)


def check_folder(folder: Path, size: int, trust: bool, where: str) -> tuple[str, str, float | None]:
    """(family key, Pythae config class, KL weight β) of a model folder, after the checks
    that need no unpickling: it exists, holds a model, takes the study's images, and holds
    no pickled code unless trusted (a vaebench publication's safe files make its pickles
    unneeded). β: vaebench's record's, else the Pythae config's `beta`, else the family's
    fixed KL weight (VAE: 1), else None."""
    cfg_file = folder / "model_config.json"
    if not cfg_file.is_file():
        raise VaebenchError(f"{where}: {folder} holds no model_config.json; give the folder "
                            "Pythae's save() wrote (e.g. .../final_model)")  # fmt: skip
    cfg = json.loads(cfg_file.read_text())
    shape = list(cfg.get("input_dim") or [])
    if shape != [3, size, size]:
        raise VaebenchError(f"{where}: the model takes images of shape {tuple(shape)}, the "
                            f"study's are (3, {size}, {size}); evaluate it in a study of its "
                            "size (dataset.image_size)")  # fmt: skip
    record = folder / "vaebench.json"
    own = json.loads(record.read_text()).get("config", {}) if record.is_file() else {}
    key = own.get("model")  # a vaebench run or publication: its own record names the family
    key = key if key in families.BY_KEY else families.by_config_class(cfg.get("name", ""))
    beta = own.get("beta", cfg.get("beta", families.lookup(key).kl_weight))
    safe, code = is_publication(folder), pickled(folder)
    if code and not safe and not trust:
        raise VaebenchError(f"{where}: {folder} holds pickled code ({', '.join(code)}); "
                            "loading it runs that code: set trust_pickled_code: true on the "
                            "entry only if you trust whoever wrote it")  # fmt: skip
    if not safe and not (folder / "model.pt").is_file():
        raise VaebenchError(f"{where}: {folder} holds no model.pt (nor vaebench's model."
                            "safetensors); give the folder Pythae's save() wrote")  # fmt: skip
    return key or families.OTHER.key, str(cfg.get("name", "")), beta


def is_publication(folder: Path) -> bool:
    """A vaebench publication (or run folder with its safe files): loads without pickles."""
    return all((folder / f).is_file() for f in SAFE)


def pickled(folder: Path) -> list[str]:
    """The names of the folder's pickle files: the code that loading it would run."""
    return sorted(p.name for p in folder.iterdir() if p.suffix in PICKLES)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGES and p.is_file())


def count_samples(path: Path, size: int, where: str) -> int:
    """How many images a samples entry holds (a .npy's header only; a folder's file names)."""
    if path.suffix == ".npy" and path.is_file():
        import numpy as np

        arr = np.load(path, mmap_mode="r")
        if arr.ndim != 4 or tuple(arr.shape[1:]) != (3, size, size) or arr.dtype != np.uint8:
            raise VaebenchError(f"{where}: {path} is {arr.dtype} {tuple(arr.shape)}, the study "
                                f"needs uint8 (N, 3, {size}, {size}) (N images, channels "
                                "first)")  # fmt: skip
        n = len(arr)
    elif path.is_dir():
        n = len(image_files(path))
    else:
        raise VaebenchError(f"{where}: {path} is neither a .npy file nor a folder of images")
    if n < 2:
        raise VaebenchError(f"{where}: {path} holds {n} images; set-level metrics need more")
    return n


def info(entry: Evaluated) -> dict[str, Any]:
    """The identifying columns of its Parquet rows (config.run_info's, plus what it is)."""
    return {"run": entry.id, "model": entry.name, "family": entry.family, "beta": entry.beta,
            "seed": entry.seed, "evaluated": entry.kind,
            "family_key": entry.family_key}  # fmt: skip


def import_params(entry: Evaluated, n_samples: int) -> dict[str, Any]:
    """What the import job depends on (canonical in vaebench.config)."""
    out = {"name": entry.name, "kind": entry.kind, "source": entry.source, "seed": entry.seed,
           "trust_pickled_code": entry.trust_pickled_code, "family_key": entry.family_key,
           "pythae_class": entry.pythae_class, "beta": entry.beta}  # fmt: skip
    if entry.kind == "samples":
        out["n"] = min(n_samples, entry.n_images or 0)
    if entry.revision:
        out["revision"] = entry.revision
    return out


def source_files(entry: Evaluated, study_dir: str) -> list[str]:
    """The entry's files, as the import job's inputs (a new file there reruns its jobs)."""
    path = Path(entry.source if entry.kind != "hub" else fetched(study_dir, entry.name)["files"])
    if entry.kind == "samples":
        return [str(path)] if path.is_file() else [str(p) for p in image_files(path)]
    if is_publication(path):
        return [str(path / f) for f in SAFE]
    return sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith("."))


def fetched(study_dir: str, name: str) -> dict[str, str]:
    """Where fetch_model puts a hub entry's files and its record of what it fetched."""
    return {"files": f"{study_dir}/evaluate/{name}/files",
            "record": f"{study_dir}/evaluate/{name}/fetched.json"}  # fmt: skip


def fetch(name: str, repo: str, revision: str, size: int, trust: bool, out: str,
          record: str) -> None:
    """Fetch a hub entry's repository at `revision` through the local Hugging Face cache
    (offline with HF_HUB_OFFLINE=1: the cache only), check it as a pythae folder, and copy
    its files to `out` with a record of the commit and each file's SHA-256."""
    import huggingface_hub
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from vaebench import io

    where = f"evaluate entry {name!r} ({repo})"
    try:
        snap = Path(huggingface_hub.snapshot_download(repo, revision=revision))
    except LocalEntryNotFoundError:
        raise VaebenchError(f"{where}: revision {revision!r} is not in the local Hugging Face "
                            "cache and the Hub is not reachable (offline); fetch it where it "
                            "is (`hf download REPO --revision REV`), or give a pythae "
                            "folder") from None  # fmt: skip
    except (RepositoryNotFoundError, RevisionNotFoundError, HFValidationError) as err:
        first = str(err).splitlines()[0]
        raise VaebenchError(f"{where}: no such repository or revision {revision!r} on the "
                            f"Hub ({first}); check the entry's hub and revision") from None
    check_folder(snap, size, trust, where)
    files = sorted(p for p in snap.iterdir() if p.is_file())
    with io.atomic_dir(out) as tmp:
        for f in files:
            shutil.copyfile(f, tmp / f.name)  # the cache's symlinks resolved
    io.save_json(record, {"repo": repo, "revision": revision, "commit": snap.name,
                          "sha256": {f.name: io.sha256_file(f) for f in files},
                          **io.provenance()})  # fmt: skip


# --- the import jobs (run by vaebench.jobs; these load torch and numpy) -----------------------


def import_model(params: dict[str, Any], files: list[str], out: str,
                 fetch_record: str | None = None) -> None:
    """Copy a model entry's files into the run's model folder with vaebench's record (for a
    hub entry, with fetch_model's record of the commit it fetched)."""
    from vaebench import io

    src = Path(files[0]).parent
    where = f"evaluate entry {params['name']!r}"
    safe = is_publication(src)
    record = {
        "evaluated": {
            "kind": params["kind"], "source": params["source"],
            "revision": params.get("revision"), "pythae_class": params["pythae_class"],
            "fetched": json.loads(Path(fetch_record).read_text()) if fetch_record else None,
            "trust_pickled_code": params["trust_pickled_code"],
            "route": "safetensors" if safe else "pythae",
            "sha256": {Path(f).name: io.sha256_file(f) for f in files},
        },
    }  # fmt: skip
    run = f"{params['name']}/evaluated"
    if safe:  # vaebench's own record rebuilds the networks; the run id and seed are ours
        own = json.loads((src / "vaebench.json").read_text())
        record["config"] = {**own["config"], "run": run, "seed": params["seed"]}
    else:
        pickled = [Path(f).name for f in files if Path(f).suffix in PICKLES]
        if pickled and not params["trust_pickled_code"]:
            raise VaebenchError(f"{where}: {src} holds pickled code ({', '.join(pickled)}); "
                                "set trust_pickled_code: true on the entry to load it")  # fmt: skip
        cfg = json.loads((src / "model_config.json").read_text())
        record["config"] = {"run": run, "model": params["family_key"], "seed": params["seed"],
                            "beta": params["beta"],
                            "training": {"reconstruction_loss": cfg.get("reconstruction_loss"),
                                         "checkpoint": None}}  # fmt: skip
    with io.atomic_dir(out) as tmp:
        for f in files:
            shutil.copy2(f, tmp / Path(f).name)
        (tmp / "vaebench.json").write_text(json.dumps(record, indent=2, sort_keys=True))


def import_samples(params: dict[str, Any], files: list[str], size: int, out: str) -> None:
    """A samples entry's first `n` images (sorted file names, or the array's order) as one
    uint8 (N, 3, S, S) array, each image's size checked."""
    import numpy as np

    from vaebench import io

    n, where = params["n"], f"evaluate entry {params['name']!r}"
    if len(files) == 1 and files[0].endswith(".npy"):
        x = np.asarray(np.load(files[0], mmap_mode="r")[:n])
    else:
        from PIL import Image

        arrays = []
        for f in files[:n]:
            with Image.open(f) as im:
                if im.size != (size, size):
                    raise VaebenchError(f"{where}: {f} is {im.size[0]}x{im.size[1]} px, the "
                                        f"study's images are {size}x{size}")  # fmt: skip
                arrays.append(np.asarray(im.convert("RGB")).transpose(2, 0, 1))
        x = np.stack(arrays)
    io.save_npy(out, np.ascontiguousarray(x, dtype=np.uint8))
