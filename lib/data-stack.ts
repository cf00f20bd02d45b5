import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { ObligationTable } from './constructs/obligation-table.ts';

/** The stateful data side: the one DynamoDB table, retained. */
export class DataStack extends Stack {
  readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.table = new ObligationTable(this, 'Obligations').table;
  }
}
