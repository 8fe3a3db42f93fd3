import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { TrainingJobEntity } from './training-job.entity';
import { AutoMLTrainingJobStatus, TransitionSource } from '../domain/automl-training.enums';

/** One status transition of a job: the audit trail behind GET /jobs/{job_id}/history. */
@Entity({ name: 'automl_training_job_transitions' })
@Index('IDX_automl_training_job_transitions_job', ['jobId', 'id'])
@Check('CHK_automl_training_job_transitions_source', `"source" IN ('callback', 'reconcile', 'user')`)
export class TrainingJobTransitionEntity {
  @PrimaryGeneratedColumn({ name: 'id', type: 'bigint' })
  id!: string;

  @Column({ name: 'job_id', type: 'uuid' })
  jobId!: string;

  @ManyToOne(() => TrainingJobEntity, { onDelete: 'CASCADE', createForeignKeyConstraints: true })
  @JoinColumn({ name: 'job_id', foreignKeyConstraintName: 'FK_automl_training_job_transitions_job' })
  job?: TrainingJobEntity;

  @Column({ name: 'from_status', type: 'varchar', length: 16, nullable: true })
  fromStatus!: AutoMLTrainingJobStatus | null;

  @Column({ name: 'to_status', type: 'varchar', length: 16 })
  toStatus!: AutoMLTrainingJobStatus;

  @Column({ name: 'source', type: 'varchar', length: 16 })
  source!: TransitionSource;

  @Column({ name: 'actor', type: 'text' })
  actor!: string;

  @Column({ name: 'error_message', type: 'text', nullable: true })
  errorMessage!: string | null;

  @Column({ name: 'at', type: 'timestamptz', precision: 3 })
  at!: Date;
}
