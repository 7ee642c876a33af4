"""Every name and default the stages share, defined once: labels, registry names, block names, defaults.

Imported wherever one of these is needed (models, orchestration, stack, bench), so that renaming an
alias or changing a default is one edit. Values only: importing this module does nothing else.
"""

from __future__ import annotations

# The label: what each trip is, and which class a probability is of.
LABEL_COLUMN = "user_type"
MEMBER = "member"
CASUAL = "casual"
POSITIVE_LABEL = MEMBER  # probabilities and P(member) scores are of this class
CLASS_NAMES = (CASUAL, MEMBER)  # the order of the classes in plots and confusion matrices

# MLflow: the experiment, the registered model and its two aliases.
EXPERIMENT = "to-bikes"
MODEL_NAME = "to-bikes-member"
CHAMPION = "champion"
CHALLENGER = "challenger"

# Prefect blocks (saved by `make blocks`, loaded by every flow run).
# prefect.yaml names the same blocks in its templates ({{ prefect.blocks.<type>.<name> }}).
CONFIG_BLOCK = "to-bikes"  # of type to-bikes-config: bucket, prefixes, endpoints, model name
AWS_BLOCK = "to-bikes-aws"  # aws-credentials, with any custom S3 endpoint
BUCKET_BLOCK = "to-bikes-bucket"  # s3-bucket: where Prefect keeps cached task results

# Defaults of the pipeline's parameters (the CLIs, the flows and the Makefile agree on these).
DEFAULT_MIN_DURATION_S = 60  # shortest trip kept, seconds
DEFAULT_MAX_EVALS = 8  # hyper-parameter trials at most
DEFAULT_SEED = 7  # training and sample seed, recorded with every run
DEFAULT_MARGIN = 0.002  # ROC AUC a challenger must gain over the champion to be promoted
TIME_BUDGET_S = 5.0  # seconds the search may take; the final fit is one refit on a fixed sample

# Monitoring: the MLflow experiment of monitoring runs and the Prefect event a breach emits.
MONITORING_EXPERIMENT = "to-bikes-monitoring"
BREACH_EVENT = "to-bikes.monitoring.breach"

# Ingest (models.data.ingest, orchestration/flows/ingest.py): the events a run emits, one per month whose
# trips it added or changed (the pipeline automation runs that month) and one per file the City withdrew.
# Both name their period or file as the event's resource, like the breach event.
PERIOD_RESOURCE = "to-bikes.period.{period}"
MONTH_CHANGED_EVENT = "to-bikes.month.changed"
FILE_WITHDRAWN_EVENT = "to-bikes.file.withdrawn"

# Notifications (orchestration/deploy/notifications.py): the events a run emits besides the above, and the
# Prefect notification block `make blocks` saves when TO_BIKES_NOTIFY_URL is set.
CHAMPION_CHANGED_EVENT = "to-bikes.champion.changed"  # the registry moved the champion alias
QUALITY_WARNING_EVENT = "to-bikes.data.quality-warning"  # a month's member share moved > 25 points
NOTIFY_BLOCK = "to-bikes-notify"
MONTHS_ARTIFACT = "months"  # the months view (python -m orchestration months), one row per month
# Prefect deployments (prefect.yaml) as flow/deployment. The name says how a run starts: `on-demand`
# (a command or an automation starts it; no schedule) or `scheduled-daily` (on its cron; the only one).
PIPELINE_DEPLOYMENT = "to-bikes-pipeline/on-demand"
PREPROCESS_DEPLOYMENT = "preprocess/on-demand"
NEWEST_MONTH_DEPLOYMENT = "to-bikes-newest-month/on-demand"
SCORE_DEPLOYMENT = "score/on-demand"
BACKFILL_DEPLOYMENT = "backfill/on-demand"
INGEST_DEPLOYMENT = "ingest/scheduled-daily"

# Prefect automations `make deploy` creates (orchestration/deploy/automations.py, loop_automations.py);
# `make doctor` checks that each exists.
ZOMBIE_AUTOMATION = "to-bikes-crash-zombie-flow-runs"
STUCK_PENDING_AUTOMATION = "to-bikes-reschedule-stuck-pending"
SCORE_AFTER_AUTOMATION = "to-bikes-score-after-preprocess"
RETRAIN_AUTOMATION = "to-bikes-retrain-on-breach"
PIPELINE_ON_MONTH_AUTOMATION = "to-bikes-pipeline-on-month"
AUTOMATIONS = (
    ZOMBIE_AUTOMATION,
    STUCK_PENDING_AUTOMATION,
    SCORE_AFTER_AUTOMATION,
    RETRAIN_AUTOMATION,
    PIPELINE_ON_MONTH_AUTOMATION,
)
