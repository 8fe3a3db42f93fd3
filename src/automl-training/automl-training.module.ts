import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AutomlTrainingController } from './automl-training.controller';
import { AutomlTrainingService } from './automl-training.service';
import { StoredStatusReconciler, TrainingJobStatusReconciler } from './training-job-status.reconciler';
import { TrainingJobTransitionEntity } from './training-job-transition.entity';
import { TrainingJobEntity } from './training-job.entity';
import { TrainingJobRepository } from './training-job.repository';

@Module({
  imports: [TypeOrmModule.forFeature([TrainingJobEntity, TrainingJobTransitionEntity])],
  controllers: [AutomlTrainingController],
  providers: [
    AutomlTrainingService,
    TrainingJobRepository,
    { provide: TrainingJobStatusReconciler, useClass: StoredStatusReconciler },
  ],
})
export class AutomlTrainingModule {}
