import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Failed authentications of one client address in its current one-minute
 * window, shared by every replica. Written only when an authentication fails
 * (AuthFailureLimiter); rows of ended windows are deleted by the same path.
 */
@Entity({ name: 'automl_training_auth_failures' })
export class AuthFailureEntity {
  @PrimaryColumn({ name: 'client', type: 'text', primaryKeyConstraintName: 'PK_automl_training_auth_failures' })
  client!: string;

  @Column({ name: 'window_started_at', type: 'timestamptz', precision: 3 })
  windowStartedAt!: Date;

  @Column({ name: 'failures', type: 'integer' })
  failures!: number;
}
