import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AutomlTrainingModule } from '../automl-training/automl-training.module';
import { HealthController } from './health.controller';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), AutomlTrainingModule],
  controllers: [HealthController],
})
export class HealthModule {}
