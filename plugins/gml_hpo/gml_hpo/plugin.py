"""gml-hpo hook implementations (import-light: no torch, no numpy at import)."""

from __future__ import annotations

import os

from gml_core.api import hookimpl

from .reporting import ENV_TRIAL_DIR


@hookimpl
def gml_add_hookspecs(host):
    from . import hookspecs

    host.add_hookspecs(hookspecs)


@hookimpl
def gml_register_searcher(register):
    register("GridSearcher", "gml_hpo.searchers.grid:GridSearcher")
    register("BatchSearcher", "gml_hpo.searchers.batch:BatchSearcher")
    register("RandomSearcher", "gml_hpo.searchers.random_search:RandomSearcher")
    register("SkoptSearcher", "gml_hpo.searchers.skopt_search:SkoptSearcher")
    register("EvolutionSearcher", "gml_hpo.searchers.evolution:EvolutionSearcher")
    register("BOSearcher", "gml_hpo.searchers.bo:BOSearcher")
    register("TPESearcher", "gml_hpo.searchers.tpe:TPESearcher")


@hookimpl
def gml_register_assessor(register):
    register("MedianStopAssessor", "gml_hpo.assessors.median:MedianStopAssessor")
    register("CurveFittingAssessor", "gml_hpo.assessors.curvefit:CurveFittingAssessor")
    register("AshaAssessor", "gml_hpo.assessors.asha:AshaAssessor")


@hookimpl
def gml_register_executor(register):
    register("LocalScheduler", "gml_hpo.executors.local:LocalExecutor")
    register("SlurmScheduler", "gml_hpo.executors.slurm:SlurmExecutor")


@hookimpl
def gml_register_tracker(register):
    register("store", "gml_hpo.tracking.store_tracker:StoreTracker")
    register("mlflow", "gml_hpo.tracking.mlflow_tracker:MlflowTracker")


@hookimpl
def gml_register_commands(cli):
    from .cli.group import add_search_commands

    add_search_commands(cli)


@hookimpl
def gml_on_evaluate(algorithm, iteration, epoch, metrics):
    """Inside an HPO trial (GML_HPO_TRIAL_DIR set), report each validation automatically."""
    if not os.environ.get(ENV_TRIAL_DIR):
        return
    if os.environ.get("RANK", "0") != "0":
        return
    from .gml_metrics import report_evaluation

    report_evaluation(iteration, epoch, metrics)
