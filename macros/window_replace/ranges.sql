{#- Ranges: the one renderer of the `[station, start, end)` lists a change plan carries, and the
    SQL conditions built from them and from window vars. A range's station is null for every
    station; its bounds are UTC text (`2023-01-01 00:00:00+00`) or null for unbounded. -#}

{#- SQL: `ranges` as a VALUES list named `changed_ranges (station_id, range_start, range_end)`;
    bounds as literals of `column_type` (`timestamptz`, or `date` for a daily model's column). -#}
{% macro ranges_values(ranges, column_type='timestamptz') -%}
    (
        values
        {%- for station, start, end in ranges %}
        ({{ station if station is not none else 'cast(null as integer)' }}, {{ plan_bound(start or '-infinity', column_type) }}, {{ plan_bound(end or 'infinity', column_type) }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as changed_ranges (station_id, range_start, range_end)
{%- endmacro %}

{#- SQL: one bound of a range as a literal of `column_type` (date: the bound's UTC date). -#}
{% macro plan_bound(value, column_type) -%}
    {%- if column_type == 'date' -%}
        cast('{{ value[:10] }}' as date)
    {%- else -%}
        {{ timestamp_literal(value) }}
    {%- endif -%}
{%- endmacro %}

{#- SQL condition: `time_column` (and `station_column`) in one of `ranges`. -#}
{% macro range_condition(ranges, time_column, column_type='timestamptz', station_column='station_id') -%}
    {%- set conditions = [] -%}
    {%- for station, start, end in ranges -%}
        {%- set parts = [] -%}
        {%- if station is not none -%}{%- do parts.append(station_column ~ ' = ' ~ station) -%}{%- endif -%}
        {%- if start is not none -%}{%- do parts.append(time_column ~ ' >= ' ~ plan_bound(start, column_type)) -%}{%- endif -%}
        {%- if end is not none -%}{%- do parts.append(time_column ~ ' < ' ~ plan_bound(end, column_type)) -%}{%- endif -%}
        {%- do conditions.append('(' ~ (parts | join(' and ') if parts else 'true') ~ ')') -%}
    {%- endfor -%}
    {{- conditions | join('\n        or ') if conditions else 'false' -}}
{%- endmacro %}

{#- The plan's ranges split into per-station ranges and ranges of every station, with the column
    and its type: the model's own (`meta.window`), or `time_column` of an input. -#}
{% macro split_ranges(plan, time_column=none) -%}
    {%- set settings = config.get('meta', {}).get('window', {}) -%}
    {%- set own = time_column is none -%}
    {%- set split = {
        'column': settings.column if own else time_column,
        'column_type': 'date' if own and settings.get('grain') == 'day' else 'timestamptz',
        'per_station': [],
        'every_station': [],
    } -%}
    {%- for range in plan.ranges -%}
        {%- do (split.every_station if range[0] is none else split.per_station).append(range) -%}
    {%- endfor -%}
    {{ return(split) }}
{%- endmacro %}

{#- SQL join condition: row `alias` of this model (key and `split.column`) in a changed range. -#}
{% macro in_changed_range(split, alias) -%}
    {{ alias }}.{{ window_key() }} = changed_ranges.station_id
            and {{ alias }}.{{ split.column }} >= changed_ranges.range_start
            and {{ alias }}.{{ split.column }} < changed_ranges.range_end
{%- endmacro %}

{#- SQL condition: `time_column` (and the model's key: station or location) inside the window,
    widened to `grain`; `false` when the products var leaves this model out. `column_type` is
    timestamptz or date. -#}
{% macro window_predicate(time_column, grain='hour', column_type='timestamptz') -%}
    {%- set window = window_settings() -%}
    {%- set key = window_key() -%}
    {%- if window_excludes_model() -%}
        false
    {%- else -%}
        {{ window_condition(time_column, window_bounds(grain), column_type, window_ids(window, key), key) }}
    {%- endif -%}
{%- endmacro %}

{#- SQL condition: `time_column` in [bounds[0], bounds[1]) (UTC midnights for timestamptz) and the
    stations (Python: `weatherinsight.windows.range_predicate`; tests/python/test_window_parity.py). -#}
{% macro window_condition(time_column, bounds, column_type='timestamptz', stations=none, station_column='station_id') -%}
    {%- if column_type == 'date' -%}
        {{ time_column }} >= cast('{{ bounds[0] }}' as date) and {{ time_column }} < cast('{{ bounds[1] }}' as date)
    {%- else -%}
        {{ time_column }} >= {{ timestamp_literal(bounds[0] ~ ' 00:00:00+00') }}
        and {{ time_column }} < {{ timestamp_literal(bounds[1] ~ ' 00:00:00+00') }}
    {%- endif -%}
    {%- if stations %}
        and {{ station_column }} in ({{ stations | join(', ') }})
    {%- endif -%}
{%- endmacro %}

{#- The window predicate for this model's own rows, from its `meta.window` config (column, grain). -#}
{% macro model_window_predicate() -%}
    {%- set settings = config.get('meta', {}).get('window', {}) -%}
    {%- if not settings.get('column') -%}
        {{ exceptions.raise_compiler_error(this.name ~ ": a windowed model needs meta.window.column and meta.window.grain") }}
    {%- endif -%}
    {%- set grain = settings.get('grain', 'hour') -%}
    {{ return(window_predicate(settings.column, grain, 'date' if grain == 'day' else 'timestamptz')) }}
{%- endmacro %}

{#- SQL: the ranges `ranges_sql` selects (station_id, range_start, range_end; a null station is
    every station), overlapping or touching ranges of one station merged, at most `most_per_station`
    per station (the smallest gaps bridged: a change scattered over thousands of single hours costs
    one index scan per range; recomputing the hours between a few of them costs less, same result). -#}
{% macro merged_ranges(ranges_sql, most_per_station=16) -%}
    select station_id, min(range_start) as range_start, max(range_end) as range_end
    from (
        select
            *,
            sum(case when gap_rank <= {{ most_per_station }} then 1 else 0 end)
                over (partition by station_id order by range_start) as bridged_island
        from (
            select
                *,
                row_number() over (partition by station_id order by gap_seconds desc nulls first, range_start)
                    as gap_rank
            from (
                select
                    station_id,
                    range_start,
                    range_end,
                    case when isfinite(range_start) and isfinite(lag(range_end) over by_station)
                        then extract(epoch from range_start - lag(range_end) over by_station)
                    end as gap_seconds
                from (
                    select station_id, min(range_start) as range_start, max(range_end) as range_end
                    from (
                        select
                            *,
                            sum(case when previous_end >= range_start then 0 else 1 end)
                                over (partition by station_id order by range_start, range_end) as island
                        from (
                            select
                                *,
                                max(range_end) over (
                                    partition by station_id order by range_start, range_end
                                    rows between unbounded preceding and 1 preceding
                                ) as previous_end
                            from ({{ ranges_sql }}) as ranges
                        ) as ordered
                    ) as islands
                    group by station_id, island
                ) as exact
                window by_station as (partition by station_id order by range_start)
            ) as gaps
        ) as ranked
    ) as bridged
    group by station_id, bridged_island
{%- endmacro %}

