import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AirflowClient } from './airflow/airflow.client';
import { AirflowStatusReconciler } from './airflow-status.reconciler';
import { BackgroundReconciler } from './background-reconciler';
import { DagRetirer } from './dag-retirer';
import { TransitionEventStreams } from './events/transition-event-streams';
import { TransitionFeed } from './events/transition-feed';
import { TransitionNotifications } from './events/transition-notifications';
import { AutomlTrainingController } from './automl-training.controller';
import { AutomlTrainingService } from './automl-training.service';
import { DagDeployer } from './dag/dag-deployer';
import { DagRenderer } from './dag/dag-renderer';
import { IdempotencyStore } from './idempotency.store';
import { TrainingJobOrchestrator } from './training-job.orchestrator';
import { TrainingJobStatusReconciler } from './training-job-status.reconciler';
import { TrainingJobTransitionEntity } from './training-job-transition.entity';
import { TrainingJobEntity } from './training-job.entity';
import { IdempotencyKeyEntity } from './idempotency-key.entity';
import { TrainingJobRepository } from './training-job.repository';

@Module({
  imports: [TypeOrmModule.forFeature([TrainingJobEntity, TrainingJobTransitionEntity, IdempotencyKeyEntity])],
  controllers: [AutomlTrainingController],
  providers: [
    AutomlTrainingService,
    TrainingJobOrchestrator,
    TrainingJobRepository,
    AirflowClient,
    DagRenderer,
    DagDeployer,
    IdempotencyStore,
    AirflowStatusReconciler,
    { provide: TrainingJobStatusReconciler, useExisting: AirflowStatusReconciler },
    BackgroundReconciler,
    DagRetirer,
    TransitionNotifications,
    TransitionFeed,
    TransitionEventStreams,
  ],
  exports: [AirflowClient],
})
export class AutomlTrainingModule {}
