"""The PK simulator in a real browser: a titrated infusion, its chart and a what-if."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.web.simulation.models import Prediction
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_a_physician_simulates_a_titrated_infusion_and_asks_what_if(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, shot: Any
) -> None:
    log_in(page, live_server, cast.alice, "a long physician passphrase")
    page.click("text=PK simulator")
    page.select_option("#id_model", "domino")
    page.fill("#id_weight_kg", "72")
    page.fill("#id_age_years", "48")
    page.fill("#id_segments", "0:60:60\n60:120:75\n120:240:90")
    page.fill("#id_threshold_ng_per_ml", "100")
    page.click("button:has-text('Simulate')")
    page.wait_for_selector(".pk-panel .js-plotly-plot")
    text = page.inner_text(".pk-panel")
    assert "At the end of the infusion" in text
    assert "Below 100 ng/mL" in text
    shot("prediction")
    page.fill(".pk-panel input[name=rate_mg_per_h]", "40")
    page.click(".pk-panel button:has-text('Show')")
    page.wait_for_selector("text=What if the rate were 40 mg/h")
    page.wait_for_selector(".pk-panel .js-plotly-plot")
    shot("what-if")
    assert Prediction.objects.filter(purpose="what-if").count() == 1
