import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';

/** FastAPI's own 422 item schema. */
@ApiSchema({ name: 'ValidationError' })
export class ValidationErrorSchema {
  @ApiProperty({
    type: 'array',
    items: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
    title: 'Location',
    required: true,
  })
  loc!: (string | number)[];

  @ApiProperty({ type: 'string', title: 'Message', required: true })
  msg!: string;

  @ApiProperty({ type: 'string', title: 'Error Type', required: true })
  type!: string;

  @ApiProperty({ title: 'Input', required: false })
  input?: unknown;

  @ApiPropertyOptional({ type: Object, title: 'Context' })
  ctx?: object;
}

/** FastAPI's own 422 body schema. */
@ApiSchema({ name: 'HTTPValidationError' })
export class HTTPValidationError {
  @ApiProperty({ type: [ValidationErrorSchema], title: 'Detail', required: false })
  detail?: ValidationErrorSchema[];
}
