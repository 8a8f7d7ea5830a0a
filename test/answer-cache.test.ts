import { expect, test } from 'vitest';
import { createAnswerCache } from '../src/serve/answer-cache.js';

const bytes = (n: number, fill = 0) => Buffer.alloc(n, fill);

test('keeps answers up to its size, dropping the least recently used first', () => {
  const cache = createAnswerCache(100);
  cache.set('a', bytes(40, 1));
  cache.set('b', bytes(40, 2));
  expect(cache.get('a')).toEqual(bytes(40, 1)); // now b is the least recently used
  cache.set('c', bytes(40, 3));
  expect(cache.get('b')).toBeUndefined();
  expect(cache.get('a')).toEqual(bytes(40, 1));
  expect(cache.get('c')).toEqual(bytes(40, 3));
  expect(cache.bytes).toBe(80);
});

test('an answer set again replaces the old one; one larger than the whole cache is not kept', () => {
  const cache = createAnswerCache(100);
  cache.set('a', bytes(60));
  cache.set('a', bytes(30));
  expect(cache.bytes).toBe(30);
  cache.set('huge', bytes(101));
  expect(cache.get('huge')).toBeUndefined();
  expect(cache.get('a')).toEqual(bytes(30));
});
