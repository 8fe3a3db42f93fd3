class TrainerError(Exception):
    """A failure whose message is the one line the DAG reports as the job's error_message."""
