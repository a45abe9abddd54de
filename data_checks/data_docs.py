"""Great Expectations' Data Docs site of the landing checks, rendered to work from files alone.

GX's page templates link Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from public CDNs and its logo
from S3, and none of them ships in the great_expectations wheel: offline, its pages rendered unstyled. The site's
configuration (public: ``site_section_builders`` and their ``view``) names :class:`OfflinePageView`, GX's own
page view with our templates ahead of GX's (``data_docs_templates/``): the same pages, with an inlined stylesheet
of the Bootstrap classes they use and no scripts. What is lost is the interactivity those scripts added: the
"Failed Only" filter, sortable tables, and Vega charts (profiling pages only; cprof renders none).

Only pages of failed validations and of their suites are built (each validation page links its suite's page);
GX's index.html is not: its table is drawn by bootstrap-table's script, and ``run.html`` is the run's index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from great_expectations.render.view import DefaultJinjaPageView
from jinja2 import ChoiceLoader, FileSystemLoader

TEMPLATES = Path(__file__).with_name("data_docs_templates")


class OfflinePageView(DefaultJinjaPageView):
    """GX's page view, its templates overridden by ours where we have one (page.j2, top_navbar.j2, ...)."""

    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None):
        super().__init__(custom_styles_directory, custom_views_directory)
        # GX puts a custom views directory after its own templates (it can add templates, not replace them)
        self.env.loader = ChoiceLoader([FileSystemLoader(str(TEMPLATES)), self.env.loader])


def site_config(base_directory: Path) -> dict[str, Any]:
    """The Data Docs site's configuration: files under ``base_directory``, every page rendered offline."""
    view = {"module_name": __name__, "class_name": OfflinePageView.__name__}
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,  # links and a walkthrough about GX itself, not about this run
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(base_directory)},
        # never built (build_docs passes build_index=False), but SiteBuilder requires one
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "site_section_builders": {
            "expectations": {"view": view},
            "validations": {"view": view},
            "profiling": "None",
        },
    }
