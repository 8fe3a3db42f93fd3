import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AirflowClient } from './airflow/airflow.client';
import { AutomlTrainingController } from './api/automl-training.controller';
import { DagDeployer } from './dag/dag-deployer';
import { DagRenderer } from './dag/dag-renderer';
import { DagRetirer } from './dag/dag-retirer';
import { TransitionEventStreams } from './events/transition-event-streams';
import { TransitionFeed } from './events/transition-feed';
import { TransitionNotifications } from './events/transition-notifications';
import { IdempotencyKeyEntity } from './idempotency/idempotency-key.entity';
import { IdempotencyStore } from './idempotency/idempotency.store';
import { JobAirflowActionsService } from './jobs/job-airflow-actions.service';
import { JobRecordsService } from './jobs/job-records.service';
import { JobMaintenanceQueries } from './persistence/job-maintenance.queries';
import { TrainingJobTransitionEntity } from './persistence/training-job-transition.entity';
import { TrainingJobTransitionRepository } from './persistence/training-job-transition.repository';
import { TrainingJobEntity } from './persistence/training-job.entity';
import { TrainingJobRepository } from './persistence/training-job.repository';
import { TransitionCommits } from './persistence/transition-commits';
import { AirflowStatusReconciler } from './reconcile/airflow-status.reconciler';
import { BackgroundReconciler } from './reconcile/background-reconciler';
import { TrainingJobStatusReconciler } from './reconcile/training-job-status.reconciler';

@Module({
  imports: [TypeOrmModule.forFeature([TrainingJobEntity, TrainingJobTransitionEntity, IdempotencyKeyEntity])],
  controllers: [AutomlTrainingController],
  providers: [
    JobRecordsService,
    JobAirflowActionsService,
    TrainingJobRepository,
    TrainingJobTransitionRepository,
    JobMaintenanceQueries,
    AirflowClient,
    DagRenderer,
    DagDeployer,
    IdempotencyStore,
    AirflowStatusReconciler,
    { provide: TrainingJobStatusReconciler, useExisting: AirflowStatusReconciler },
    BackgroundReconciler,
    DagRetirer,
    TransitionNotifications,
    { provide: TransitionCommits, useExisting: TransitionNotifications },
    TransitionFeed,
    TransitionEventStreams,
  ],
  exports: [AirflowClient],
})
export class AutomlTrainingModule {}
