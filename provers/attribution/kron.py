"""EK-FAC (and kronfluence's other strategies) on the prover, through kronfluence 1.0.1.

The model given to kronfluence is :class:`~provers.attribution.batch.ExampleNet`
around a copy of the checkpoint's network: every ``nn.Linear`` is called
once per forward on ``[examples, ..., d_in]`` (so ``has_shared_parameters``
is not needed), and :meth:`ExampleNet.masks` is the per-module attention
mask that keeps padding out of the covariances. ``compute_train_loss`` is
the summed per-example training loss, with targets drawn from the model
when ``sample=True`` (the true Fisher); ``compute_measurement`` is the
query's negative log-probability, so that positive scores mean "helped"
(see :mod:`.methods`). Damping: ``damping_factor=None``, kronfluence's
0.1 x mean eigenvalue.
"""
from __future__ import annotations

import copy
import logging
import tempfile
import warnings

import torch
from torch.utils import data

from ..data import Step
from .batch import ExampleNet, Featurizer, example_logprob, example_loss


class _Items(data.Dataset):
    def __init__(self, kind: str, examples: list[list[Step]]):
        self.kind, self.examples = kind, examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.kind, self.examples[i]


def _task(model_masks):
    from kronfluence.task import Task

    class ProverTask(Task):
        def compute_train_loss(self, batch, model, sample: bool = False) -> torch.Tensor:
            return example_loss(model(batch), batch, sample=sample).sum()

        def compute_measurement(self, batch, model) -> torch.Tensor:
            out = model(batch)
            # the value head is not in the measurement; a zero term keeps its hooks firing
            return -example_logprob(out, batch).sum() + 0.0 * out["value"].sum()

        def get_attention_mask(self, batch):
            return {k: v.long() for k, v in model_masks(batch).items()}

    return ProverTask()


def kronfluence_scores(en: ExampleNet, fz_train: Featurizer, fz_query: Featurizer, train: list[list[Step]],
                       queries: list[list[Step]], strategy: str = "ekfac", batch_size: int = 32,
                       seed: int = 0, workdir: str | None = None, fit: list[list[Step]] | None = None,
                       empirical: bool = False) -> torch.Tensor:
    """``[queries, train]`` scores by kronfluence with ``strategy`` (``ekfac``, ``kfac``, ``diagonal``,
    ``identity``); the factors are fitted on ``fit`` (default: ``train``), all the training data, with
    the true Fisher (or, ``empirical``, the empirical one: no sampling, so nothing depends on batching)."""
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments
    from kronfluence.utils.dataset import DataLoaderKwargs

    logging.getLogger("kronfluence").setLevel(logging.WARNING)
    model = copy.deepcopy(en)
    task = _task(model.masks)
    model = prepare_model(model, task)

    def collate(items):
        kind = items[0][0]
        return (fz_train if kind == "train" else fz_query)([steps for _, steps in items])

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # kronfluence's torch.cuda.amp.GradScaler on CPU
        an = Analyzer("prover", model, task, cpu=True, disable_tqdm=True, output_dir=tmp)
        dl = DataLoaderKwargs(collate_fn=collate)
        an.fit_all_factors("f", _Items("train", train if fit is None else fit), per_device_batch_size=batch_size, dataloader_kwargs=dl,
                           factor_args=FactorArguments(strategy=strategy, use_empirical_fisher=empirical), overwrite_output_dir=True)
        an.compute_pairwise_scores("s", "f", _Items("query", queries), _Items("train", train),
                                   per_device_query_batch_size=max(1, len(queries)),
                                   per_device_train_batch_size=batch_size, dataloader_kwargs=dl,
                                   score_args=ScoreArguments(damping_factor=None), overwrite_output_dir=True)
        scores = an.load_pairwise_scores("s")["all_modules"]
    return scores.double()
