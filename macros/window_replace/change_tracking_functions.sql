{#- The two functions of change tracking (created by `ensure_change_tracking`, inside its DDL
    block): `ops.pending_changes()`, the input changes a model has not processed in whole, and
    `ops.unprocessed_changes()`, what of them no windowed build has processed yet. -#}
{% macro change_tracking_functions() -%}
        -- the input changes `consumer_relation` has not processed in whole: deliveries of complete
        -- dlt loads (a load without a delivery for an input: one row with has_rows false) and model
        -- changes
        create or replace function ops.pending_changes(consumer_relation text, input_relations text[])
        returns table (
            input text, change_id numeric, station_id integer,
            range_start timestamptz, range_end timestamptz, has_rows boolean
        )
        language plpgsql stable
        as $function$
        begin
            return query
            select model_changes.relation, cast(model_changes.change_id as numeric), model_changes.station_id,
                model_changes.range_start, model_changes.range_end, true
            from ops.model_changes as model_changes
            where model_changes.relation = any(input_relations)
                and not exists (
                    select 1 from ops.processed_changes as processed
                    where processed.consumer = consumer_relation
                        and processed.input = model_changes.relation
                        and processed.change_id = model_changes.change_id
                        and processed.range_start is null and processed.range_end is null
                        and processed.stations is null
                );
            {%- for raw in change_tracking_raw_sources() %}
            -- {{ raw.schema }}: one row of `{{ raw.deliveries }}` per delivery, keyed by {{ raw.key }}
            if to_regclass('{{ raw.schema }}.{{ raw.deliveries }}') is not null
                and to_regclass('{{ raw.schema }}.{{ raw.loads or "_dlt_loads" }}') is not null then
                return query
                with
                {%- if raw.loads %}
                -- a load counts once its rows are settled: it has its row in `{{ raw.loads }}`
                loads as (select _dlt_load_id as load_id from {{ raw.schema }}.{{ raw.loads }}),
                {%- else %}
                loads as (select load_id from {{ raw.schema }}._dlt_loads where status = 0),
                {%- endif %}
                pending_loads as (
                    select loads.load_id, cast(loads.load_id as numeric) as load_number,
                        substr(inputs.relation, length('{{ raw.schema }}.') + 1) as product, inputs.relation
                    from loads
                    cross join unnest(input_relations) as inputs (relation)
                    where inputs.relation like '{{ raw.schema }}.%'
                        and not exists (
                            select 1 from ops.processed_changes as processed
                            where processed.consumer = consumer_relation
                                and processed.input = inputs.relation
                                and processed.change_id = cast(loads.load_id as numeric)
                                and processed.range_start is null and processed.range_end is null
                                and processed.stations is null
                        )
                )
                select pending_loads.relation, pending_loads.load_number, cast(deliveries.{{ raw.key }} as integer),
                    deliveries.first_observed_at, deliveries.last_observed_at + interval '1 hour',
                    deliveries.{{ raw.key }} is not null
                from pending_loads
                left join {{ raw.schema }}.{{ raw.deliveries }} as deliveries
                    on deliveries._dlt_load_id = pending_loads.load_id
                    and deliveries.product = pending_loads.product
                    and deliveries.row_count > 0;
            end if;
            {%- endfor %}
        end;
        $function$;
        -- what of each of those changes no windowed build of `consumer_relation` has processed yet:
        -- one row per remaining part (station; null = every station), or one row with nothing_left
        create or replace function ops.unprocessed_changes(consumer_relation text, input_relations text[])
        returns table (
            input text, change_id numeric, station_id integer,
            range_start timestamptz, range_end timestamptz, nothing_left boolean
        )
        language sql stable
        as $function$
            with
            changes as (
                select * from ops.pending_changes(consumer_relation, input_relations)
            ),
            remaining as (
                select changes.input, changes.change_id, changes.station_id, part
                from changes
                cross join lateral unnest(
                    tstzmultirange(tstzrange(changes.range_start, changes.range_end))
                    - coalesce(
                        (
                            select range_agg(tstzrange(
                                coalesce(processed.range_start, '-infinity'),
                                coalesce(processed.range_end, 'infinity')
                            ))
                            from ops.processed_changes as processed
                            where processed.consumer = consumer_relation
                                and processed.input = changes.input
                                and processed.change_id = changes.change_id
                                and (
                                    processed.stations is null
                                    or changes.station_id = any(processed.stations)
                                )
                        ),
                        '{}'::tstzmultirange
                    )
                ) as part
                where changes.has_rows
            ),
            pending as (select distinct changes.input, changes.change_id from changes)
            select remaining.input, remaining.change_id, remaining.station_id,
                lower(remaining.part), upper(remaining.part), false
            from remaining
            union all
            select pending.input, pending.change_id, null::integer, null::timestamptz, null::timestamptz, true
            from pending
            where not exists (
                select 1 from remaining
                where remaining.input = pending.input and remaining.change_id = pending.change_id
            )
        $function$;
{%- endmacro %}
