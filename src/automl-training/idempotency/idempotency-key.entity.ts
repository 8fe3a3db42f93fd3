import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** A create request's Idempotency-Key, per caller, kept until `expiresAt`. */
@Entity({ name: 'automl_training_idempotency_keys' })
@Index('IDX_automl_training_idempotency_keys_expiry', ['expiresAt'])
export class IdempotencyKeyEntity {
  @PrimaryColumn({ name: 'scope', type: 'text', primaryKeyConstraintName: 'PK_automl_training_idempotency_keys' })
  scope!: string;

  @PrimaryColumn({ name: 'key', type: 'text', primaryKeyConstraintName: 'PK_automl_training_idempotency_keys' })
  key!: string;

  @Column({ name: 'request_hash', type: 'varchar', length: 64 })
  requestHash!: string;

  @Column({ name: 'job_id', type: 'uuid', nullable: true })
  jobId!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Column({ name: 'expires_at', type: 'timestamptz', precision: 3 })
  expiresAt!: Date;
}
