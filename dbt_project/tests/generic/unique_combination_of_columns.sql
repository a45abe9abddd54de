{#-
    No two rows share the same values of all the given columns (a composite key). Under the refresh window
    (macros/refresh_window.sql) the test sees every row whose key occurs in the periods the run rebuilt, in
    any period, so a key repeated across months is still caught.
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
{{ duplicate_keys(model, combination_of_columns) }}
{% endtest %}
