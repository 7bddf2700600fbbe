"""Elaborating a `train { }` block into a TrainConfig: data source, optimizer and settings."""
from __future__ import annotations

import os

from nngraph.diagnostics import NNError, did_you_mean
from nngraph.dsl import ast
from nngraph.dsl.elaborate.evaluation_settings import EVALUATION_SETTINGS, evaluation_setting
from nngraph.dsl.elaborate.optimization_settings import OPTIMIZATION_SETTINGS, optimization_setting, with_settings
from nngraph.dsl.loader import check_inside
from nngraph.dsl.values import Scope, describe
from nngraph.training.config import OPTIMIZERS, DataSource, Optimizer, TrainConfig


class TrainBlockMixin:
    # ---- train blocks ----
    def train_config(self, defn: ast.TrainDef, base_dir: str) -> TrainConfig:
        config = TrainConfig()
        known = {"data", "optimizer", "epochs", "batch", "seed", "holdout"} | set(EVALUATION_SETTINGS)
        known |= set(OPTIMIZATION_SETTINGS)
        scope = Scope({}, prefix="", parent=None)
        optimization = {}
        for stmt in defn.settings:
            key, span = stmt.targets[0].id, stmt.targets[0].span
            if key not in known:
                raise NNError(f"unknown training setting `{key}`", span,
                              hint=did_you_mean(key, known) or f"settings: {', '.join(sorted(known))}")
            if key == "data":
                config.data = self.data_source(stmt.value, base_dir)
            elif key == "optimizer":
                config.optimizer = self.optimizer(stmt.value, scope)
            elif key in EVALUATION_SETTINGS:
                evaluation_setting(config, key, stmt.value)
            elif key in OPTIMIZATION_SETTINGS:
                optimization_setting(self, optimization, key, stmt.value)
            else:
                value = self.expr(stmt.value, scope)
                if key == "holdout":
                    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
                        raise NNError(f"`holdout` is the fraction of rows kept for evaluation, a number in [0, 1); "
                                      f"got {value!r}", stmt.value.span)
                    config.holdout = float(value)
                else:
                    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 1):
                        raise NNError(f"`{key}` must be a positive integer, got {value!r}", stmt.value.span)
                    setattr(config, key, value)
        config.optimizer = with_settings(config.optimizer, optimization)
        return config

    def data_source(self, e: ast.Expr, base_dir: str) -> DataSource:
        if not isinstance(e, ast.Call) or not isinstance(e.func, ast.Name) or \
                e.func.id not in ("csv", "npz", "skipgram"):
            raise NNError("`data` must be csv(\"file.csv\", ...), npz(\"file.npz\") or "
                          "skipgram(\"corpus.txt\", window = 2, negatives = 5)", e.span)
        if len(e.args) != 1 or not isinstance(e.args[0], ast.String):
            raise NNError(f"{e.func.id}(...) takes the file's path as one string", e.span)
        path = os.path.join(base_dir, e.args[0].value)
        check_inside(path, base_dir, e.args[0].span, "data file")
        if e.func.id == "skipgram":
            return self.skipgram_source(e, path)
        columns = {}
        for kw in e.kwargs:
            value = self.expr(kw.value, Scope({}, ""))
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise NNError(f"`{kw.name}` must name a column or a list of columns", kw.value.span)
            columns[kw.name] = value
        return DataSource(e.func.id, path, columns, e.span)

    def skipgram_source(self, e: ast.Call, path: str) -> DataSource:
        """skipgram("corpus.txt", window = 2, negatives = 5): (centre, context, negatives) word ids."""
        settings = {"window": 2, "negatives": 5}
        for kw in e.kwargs:
            if kw.name not in settings:
                raise NNError(f"skipgram(...) has no setting `{kw.name}`", kw.span,
                              hint=did_you_mean(kw.name, settings) or "settings: window, negatives")
            value = self.expr(kw.value, Scope({}, ""))
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise NNError(f"`{kw.name}` must be a positive integer, got {describe(value)}", kw.value.span)
            settings[kw.name] = value
        return DataSource("skipgram", path, span=e.span, settings=settings)

    def call_settings(self, e: ast.Expr, name: str, keys, scope: Scope) -> dict:
        """The settings given in a call-like train-block value, `name(a, key = b)` or a bare `name`:
        {key: (value, span)} for those given, bound like a call's arguments."""
        args, kwargs = (e.args, e.kwargs) if isinstance(e, ast.Call) else ([], [])
        values = self.bind(f"`{name}`", [(key, None) for key in keys], args, kwargs, e.span, scope, "setting",
                           evaluate=lambda expr: (self.expr(expr, scope), expr.span))
        return {key: item for key, item in values.items() if item is not None}

    def optimizer(self, e: ast.Expr, scope: Scope) -> Optimizer:
        func = e.func if isinstance(e, ast.Call) else e
        if not isinstance(func, ast.Name) or func.id not in OPTIMIZERS:
            name = func.id if isinstance(func, ast.Name) else e.span.text()
            raise NNError(f"unknown optimizer `{name}`", func.span,
                          hint=did_you_mean(name, OPTIMIZERS) or f"known: {', '.join(OPTIMIZERS)}")
        settings = {}
        for key, (value, span) in self.call_settings(e, func.id, OPTIMIZERS[func.id], scope).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise NNError(f"`{key}` must be a number, got {describe(value)}", span)
            settings[key] = float(value)
        return Optimizer(func.id, settings)
