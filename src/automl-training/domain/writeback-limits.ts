/**
 * Limits of what a DAG's status writeback may report: the request schema enforces them, and the DAG renderer
 * hands them to the DAG runtime. MLflow's own limit on a metric key is 250 characters.
 */
export const MAX_WRITEBACK_METRICS = 100;
export const WRITEBACK_NAME_MAX_LENGTH = 250;
