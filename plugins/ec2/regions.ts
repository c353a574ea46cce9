/**
 * batchd's `region:` was read into amazonka's `Region` type, so its controller files name regions
 * by that type's constructors (`Virginia`, `Ireland`, `SaoPaulo`…). Both those names and AWS's own
 * codes (`us-east-1`) are accepted here.
 */
const AMAZONKA_REGIONS: Readonly<Record<string, string>> = {
  Virginia: 'us-east-1',
  NorthVirginia: 'us-east-1',
  Ohio: 'us-east-2',
  NorthCalifornia: 'us-west-1',
  Oregon: 'us-west-2',
  Montreal: 'ca-central-1',
  Calgary: 'ca-west-1',
  SaoPaulo: 'sa-east-1',
  Ireland: 'eu-west-1',
  London: 'eu-west-2',
  Paris: 'eu-west-3',
  Frankfurt: 'eu-central-1',
  Zurich: 'eu-central-2',
  Stockholm: 'eu-north-1',
  Milan: 'eu-south-1',
  Spain: 'eu-south-2',
  Tokyo: 'ap-northeast-1',
  Seoul: 'ap-northeast-2',
  Osaka: 'ap-northeast-3',
  Mumbai: 'ap-south-1',
  Hyderabad: 'ap-south-2',
  Singapore: 'ap-southeast-1',
  Sydney: 'ap-southeast-2',
  Jakarta: 'ap-southeast-3',
  Melbourne: 'ap-southeast-4',
  HongKong: 'ap-east-1',
  Bahrain: 'me-south-1',
  UAE: 'me-central-1',
  TelAviv: 'il-central-1',
  CapeTown: 'af-south-1',
  GovCloud: 'us-gov-west-1',
  GovCloudWest: 'us-gov-west-1',
  GovCloudFIPS: 'us-gov-west-1',
  GovCloudEast: 'us-gov-east-1',
  Beijing: 'cn-north-1',
  Ningxia: 'cn-northwest-1',
};

const BY_LOWER_NAME = new Map(
  Object.entries(AMAZONKA_REGIONS).map(([name, code]) => [name.toLowerCase(), code]),
);

const REGION_CODE = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$/;

/** The AWS region code for a batchd region name or code; undefined when it is neither. */
export function regionCode(name: string): string | undefined {
  const trimmed = name.trim();
  if (REGION_CODE.test(trimmed)) return trimmed;
  return BY_LOWER_NAME.get(trimmed.replace(/[\s_-]/g, '').toLowerCase());
}

export const REGION_NAMES: readonly string[] = Object.keys(AMAZONKA_REGIONS);
