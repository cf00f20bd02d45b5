/** The transaction contract (test/local/transact-contract.ts) on DynamoDB Local, the reference for the embedded front. */
import { describe } from 'node:test';
import { transactionContract } from '../local/transact-contract.ts';
import { onDynamoDbLocal } from './support.ts';

describe('transactions on DynamoDB Local', () => {
  const { it, ctx } = onDynamoDbLocal('oc-tx');
  transactionContract(it, ctx);
});
