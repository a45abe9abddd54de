-- One row: the settings the publication was made with that a reader needs to read its numbers (the currency).
-- The currency is the setting CPROF_CURRENCY (three capital letters, checked where settings are read).
select cast('{{ var("currency") }}' as {{ dbt.type_string() }}) as currency
