"""The Train tab's two forms as one configuration: Save… writes it, Load… fills both forms, Tune reads it.

A run's file has no ``search:`` section; a search's file is the same run config with one.
:class:`ConfigFiles` is a part of :class:`~app.training.train_tab.TrainTab` (a mixin): it uses
the tab's ``form`` (run), ``search_form``, ``run_config()``, ``forms`` (their tabs), ``banner``,
``show_error``, ``workspace`` and its augmentation panel.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog


class ConfigFiles:
    def search_config(self):
        """The run form's config with the search form's section (what Tune launches); None, with the
        problem shown, while either form is wrong."""
        from engine.config import ConfigError

        config = self.run_config()
        if config is None:
            return None
        try:
            return self.search_form.config_for(config)
        except ConfigError as exc:
            self.forms.setCurrentWidget(self.search_form)
            self.show_error(f"Search: {exc}", cause="form")
            return None

    def save_config(self, path: str | Path) -> Path:
        """The run form's config, with the search form's ``search:`` section once a setting is searched."""
        config = self.run_config()
        if config is None:
            raise ValueError("the run form has errors; fix the fields marked in red first")
        if self.search_form.model.space:
            config = self.search_form.config_for(config)  # ConfigError (a ValueError) names the search's field
        config, _ = self.target_panel.apply(config, self.workspace_uri)  # TargetError (a ValueError) names the field
        return config.save(path)

    def load_config(self, path: str | Path) -> None:
        """Fill the run form, and the search form from the file's ``search:`` section (emptied when it has none)."""
        from engine.config import RunConfig

        config = RunConfig.load(path)  # ConfigError names the file and the key
        self.form.load_config(config.model_copy(update={"search": None}))  # the search is the search form's
        self.search_form.load_search(config.search)
        self._target_from_loaded(config)  # its compute section and tracking URI, where it sets them
        if self._augmentation_source is not None:
            self._augmentation_source.load_config(config)  # its own steps become the panel's overrides
        self._show_augmentation()

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save run configuration", str(self.workspace / "run.yaml"), "YAML (*.yaml *.yml)"
        )
        if path:
            try:
                self.save_config(path)
            except (ValueError, OSError) as exc:
                self.show_error(f"Could not save {path}: {exc}", cause="file")
            else:
                self.banner.clear("file")

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load run configuration", str(self.workspace), "YAML (*.yaml *.yml)"
        )
        if path:
            try:
                self.load_config(path)
            except (ValueError, OSError) as exc:
                self.show_error(str(exc), cause="file")
            else:
                self.banner.clear("file")
