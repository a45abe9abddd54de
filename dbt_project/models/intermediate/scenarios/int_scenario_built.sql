-- The months' signatures (int_scenario_periods) the scenario models were last built with, written once every
-- scenario model of the run is built and tested (the refs below order it after them): the next run rebuilds the
-- months whose signature differs. A run that fails before this leaves the previous signatures, so the next
-- rebuilds what this one did not finish.
-- depends_on: {{ ref('scenario_activity_costs') }}
-- depends_on: {{ ref('scenario_cost_center_capacity') }}
-- depends_on: {{ ref('scenario_customer_profitability') }}
-- depends_on: {{ ref('scenario_whale_curve') }}
-- depends_on: {{ ref('scenario_comparison') }}
-- depends_on: {{ ref('scenario_summary') }}
select period, signature
from {{ ref('int_scenario_periods') }}
