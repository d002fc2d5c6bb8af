<?php
/**
 * The file-upload field (Pro): validation, format, and the move of uploaded
 * files into their final folder on wpforms_process_after_filter at PHP_INT_MAX.
 *
 * Files arrive in $_FILES as wpforms_{form_id}_{field_id} (one file) or
 * wpforms_{form_id}_{field_id}[] (several; the modern style). Real WPForms
 * uploads modern-style files by AJAX into a tmp folder first; the emulator
 * takes them from the form POST itself, and the result is the same.
 *
 * @package WPFormsEmulator
 */

defined( 'ABSPATH' ) || exit;

/**
 * The file-upload field and its storage (WPForms' folder or the media library).
 */
final class WPForms_Emulator_Uploads {

	const STYLE_MODERN  = 'modern';
	const STYLE_CLASSIC = 'classic';
	const MAX_FILE_NUM  = 100;

	/**
	 * Register the handlers.
	 */
	public function hooks(): void {
		add_action( 'wpforms_process_validate_file-upload', array( $this, 'validate' ), 10, 3 );
		add_action( 'wpforms_process_format_file-upload', array( $this, 'format' ), 10, 3 );
		add_filter( 'wpforms_process_after_filter', array( $this, 'upload_complete' ), PHP_INT_MAX, 3 );
	}

	/**
	 * The $_FILES key of a field.
	 *
	 * @param int        $form_id  Form id.
	 * @param int|string $field_id Field id.
	 */
	public static function input_name( int $form_id, $field_id ): string {
		return sprintf( 'wpforms_%d_%d', $form_id, $field_id );
	}

	/**
	 * Whether a field (settings or formatted) uses the modern style.
	 *
	 * @param array $field Field.
	 */
	public static function is_modern( array $field ): bool {
		return ! empty( $field['style'] ) && self::STYLE_MODERN === $field['style'];
	}

	/**
	 * The files posted for a field, one array (name, type, tmp_name, error, size)
	 * each, without the "no file" slots an empty input sends.
	 *
	 * @param int        $form_id  Form id.
	 * @param int|string $field_id Field id.
	 *
	 * @return array[]
	 */
	public static function posted_files( int $form_id, $field_id ): array {
		// phpcs:ignore WordPress.Security.NonceVerification.Missing, WordPress.Security.ValidatedSanitizedInput
		$input = $_FILES[ self::input_name( $form_id, $field_id ) ] ?? null;
		if ( ! is_array( $input ) || ! isset( $input['name'] ) ) {
			return array();
		}
		$files = array();
		if ( is_array( $input['name'] ) ) {
			foreach ( array_keys( $input['name'] ) as $i ) {
				$files[] = array(
					'name'     => (string) $input['name'][ $i ],
					'type'     => (string) ( $input['type'][ $i ] ?? '' ),
					'tmp_name' => (string) ( $input['tmp_name'][ $i ] ?? '' ),
					'error'    => (int) ( $input['error'][ $i ] ?? UPLOAD_ERR_NO_FILE ),
					'size'     => (int) ( $input['size'][ $i ] ?? 0 ),
				);
			}
		} else {
			$files[] = array(
				'name'     => (string) $input['name'],
				'type'     => (string) ( $input['type'] ?? '' ),
				'tmp_name' => (string) ( $input['tmp_name'] ?? '' ),
				'error'    => (int) ( $input['error'] ?? UPLOAD_ERR_NO_FILE ),
				'size'     => (int) ( $input['size'] ?? 0 ),
			);
		}
		return array_values(
			array_filter(
				$files,
				static function ( $file ) {
					return UPLOAD_ERR_NO_FILE !== $file['error'];
				}
			)
		);
	}

	/**
	 * Validate the posted files: count, PHP upload errors, size, extension, type.
	 *
	 * @param int|string $field_id     Field id.
	 * @param mixed      $field_submit Submitted value (unused: files come in $_FILES).
	 * @param array      $form_data    Form data.
	 */
	public function validate( $field_id, $field_submit, $form_data ): void {
		unset( $field_submit );
		$field   = (array) ( $form_data['fields'][ $field_id ] ?? array() );
		$form_id = absint( $form_data['id'] ?? 0 );
		$files   = self::posted_files( $form_id, $field_id );
		$error   = $this->validation_error( $field, $files );
		if ( '' !== $error ) {
			WPForms_Emulator::instance()->process->errors[ $form_id ][ $field_id ] = $error;
		}
	}

	/**
	 * The first problem with the posted files, or ''.
	 *
	 * @param array   $field Field settings.
	 * @param array[] $files Posted files.
	 */
	private function validation_error( array $field, array $files ): string {
		if ( empty( $files ) ) {
			return empty( $field['required'] ) ? '' : WPForms_Emulator_Fields::REQUIRED;
		}
		if ( self::is_modern( $field ) ) {
			$max = self::max_file_number( $field );
			if ( count( $files ) > $max ) {
				return sprintf( 'File uploads exceed the maximum number allowed (%d).', $max );
			}
		} elseif ( count( $files ) > 1 ) {
			return 'The classic upload field takes one file.';
		}
		$max_size   = self::max_file_size( $field );
		$extensions = self::allowed_extensions( $field );
		foreach ( $files as $file ) {
			if ( UPLOAD_ERR_OK !== $file['error'] ) {
				return sprintf( 'File upload error. PHP upload error %d.', $file['error'] );
			}
			if ( $file['size'] > $max_size ) {
				return sprintf( 'File exceeds max size allowed (%s).', size_format( $max_size ) );
			}
			$name = sanitize_file_name( $file['name'] );
			$ext  = strtolower( pathinfo( $name, PATHINFO_EXTENSION ) );
			if ( '' === $ext ) {
				return 'File must have an extension.';
			}
			if ( ! in_array( $ext, $extensions, true ) ) {
				return 'File type is not allowed.';
			}
			$checked = wp_check_filetype_and_ext( $file['tmp_name'], $name );
			if ( ! empty( $checked['proper_filename'] ) || empty( $checked['ext'] ) || empty( $checked['type'] ) ) {
				return 'File type is not allowed.';
			}
		}
		return '';
	}

	/**
	 * The modern field's file limit (1 when unset, at most 100).
	 *
	 * @param array $field Field settings.
	 */
	public static function max_file_number( array $field ): int {
		$max = empty( $field['max_file_number'] ) ? 1 : absint( $field['max_file_number'] );
		return min( max( $max, 1 ), self::MAX_FILE_NUM );
	}

	/**
	 * The field's size limit in bytes ('max_size' in MB, else WordPress's).
	 *
	 * @param array $field Field settings.
	 */
	private static function max_file_size( array $field ): int {
		if ( ! empty( $field['max_size'] ) ) {
			return (int) ( (float) preg_replace( '/[^0-9.]/', '', (string) $field['max_size'] ) * MB_IN_BYTES );
		}
		return (int) wp_max_upload_size();
	}

	/**
	 * Allowed extensions: the field's list, else every extension WordPress allows.
	 *
	 * @param array $field Field settings.
	 *
	 * @return string[]
	 */
	private static function allowed_extensions( array $field ): array {
		if ( ! empty( $field['extensions'] ) ) {
			$list = explode( ',', str_replace( array( '.', ' ' ), '', (string) $field['extensions'] ) );
		} else {
			$list = explode( '|', implode( '|', array_keys( get_allowed_mime_types() ) ) );
		}
		return array_values( array_filter( array_map( 'strtolower', $list ) ) );
	}

	/**
	 * Format: the field before its files are moved (WPForms' shape, values empty).
	 *
	 * @param int|string $field_id     Field id.
	 * @param mixed      $field_submit Submitted value (unused).
	 * @param array      $form_data    Form data.
	 */
	public function format( $field_id, $field_submit, $form_data ): void {
		unset( $field_submit );
		$field_id = absint( $field_id );
		$label    = WPForms_Emulator_Fields::label( $form_data, $field_id );
		$settings = (array) ( $form_data['fields'][ $field_id ] ?? array() );
		$process  = WPForms_Emulator::instance()->process;

		if ( ! self::is_modern( $settings ) ) {
			$process->fields[ $field_id ] = array(
				'name'          => $label,
				'value'         => '',
				'file'          => '',
				'file_original' => '',
				'ext'           => '',
				'id'            => $field_id,
				'type'          => 'file-upload',
			);
			return;
		}
		$process->fields[ $field_id ] = array(
			'name'      => $label,
			'value'     => '',
			'value_raw' => '',
			'id'        => $field_id,
			'type'      => 'file-upload',
			'style'     => self::STYLE_MODERN,
		);
	}

	/**
	 * Move the uploaded files into place and complete the file fields
	 * (wpforms_process_after_filter at PHP_INT_MAX).
	 *
	 * @param array $fields    Fields.
	 * @param array $entry     The unslashed $_POST['wpforms'] (unused).
	 * @param array $form_data Form data.
	 *
	 * @return array
	 */
	public function upload_complete( $fields, $entry, $form_data ) {
		unset( $entry );
		$process = WPForms_Emulator::instance()->process;
		if ( ! is_array( $fields ) || ! empty( $process->errors[ $form_data['id'] ] ) ) {
			return $fields;
		}
		$form_id = absint( $form_data['id'] );
		foreach ( $fields as $field_id => $field ) {
			if ( empty( $field['type'] ) || 'file-upload' !== $field['type'] ) {
				continue;
			}
			$is_visible = ! isset( $process->fields[ $field_id ]['visible'] ) || ! empty( $process->fields[ $field_id ]['visible'] );

			$fields[ $field_id ]['visible'] = $is_visible;

			if ( ! $is_visible ) {
				continue;
			}
			$settings            = (array) ( $form_data['fields'][ $field_id ] ?? array() );
			$files               = self::posted_files( $form_id, $field_id );
			$fields[ $field_id ] = self::is_modern( $field )
				? $this->complete_modern( $fields[ $field_id ], $files, $field_id, $settings, $form_data )
				: $this->complete_classic( $fields[ $field_id ], $files, $field_id, $settings, $form_data );
		}
		return $fields;
	}

	/**
	 * A classic field: the one file's keys go on the field itself.
	 *
	 * @param array      $processed Formatted field.
	 * @param array[]    $files     Posted files.
	 * @param int|string $field_id  Field id.
	 * @param array      $settings  Field settings.
	 * @param array      $form_data Form data.
	 */
	private function complete_classic( array $processed, array $files, $field_id, array $settings, array $form_data ): array {
		$file = $files[0] ?? null;
		if ( ! $file || UPLOAD_ERR_OK !== $file['error'] ) {
			return $processed;
		}
		$stored = $this->process_file( $file, $field_id, $form_data, self::is_media_integrated( $settings ) );
		if ( empty( $stored ) ) {
			return $processed;
		}
		return array_merge(
			$processed,
			array(
				'value'          => esc_url_raw( $stored['file_url'] ),
				'file'           => $stored['file_name_new'],
				'file_original'  => $stored['file_name'],
				'file_user_name' => sanitize_text_field( $file['name'] ),
				'ext'            => $stored['file_ext'],
				'attachment_id'  => absint( $stored['attachment_id'] ),
			)
		);
	}

	/**
	 * A modern field: value_raw lists the files, value joins their URLs with newlines.
	 *
	 * @param array      $processed Formatted field.
	 * @param array[]    $files     Posted files.
	 * @param int|string $field_id  Field id.
	 * @param array      $settings  Field settings.
	 * @param array      $form_data Form data.
	 */
	private function complete_modern( array $processed, array $files, $field_id, array $settings, array $form_data ): array {
		if ( empty( $files ) ) {
			return $processed;
		}
		$data = array();
		foreach ( $files as $file ) {
			$name = sanitize_file_name( $file['name'] );
			$ext  = strtolower( pathinfo( $name, PATHINFO_EXTENSION ) );
			$type = wp_check_filetype( $name )['type'];

			$file['type'] = $type ? $type : 'application/octet-stream';

			$stored = $this->process_file( $file, $field_id, $form_data, self::is_media_integrated( $settings ) );
			if ( empty( $stored ) ) {
				continue;
			}
			$data[] = array(
				'name'           => sanitize_text_field( $stored['file_name'] ),
				'value'          => esc_url_raw( $stored['file_url'] ),
				'file'           => $stored['file_name_new'],
				'file_original'  => $stored['file_name'],
				'file_user_name' => sanitize_text_field( $file['name'] ),
				'ext'            => $ext,
				'attachment_id'  => absint( $stored['attachment_id'] ),
				'id'             => $field_id,
				'type'           => $file['type'],
			);
		}
		$processed['value_raw'] = $data;
		$processed['value']     = implode( "\n", wp_list_pluck( $data, 'value' ) );
		return $processed;
	}

	/**
	 * Whether the field stores its files in the media library.
	 *
	 * @param array $settings Field settings.
	 */
	public static function is_media_integrated( array $settings ): bool {
		return ! empty( $settings['media_library'] ) && '1' === (string) $settings['media_library'];
	}

	/**
	 * The form's folder name: {form_id}-{md5(form_id . created)}.
	 *
	 * @param int|string $form_id      Form id.
	 * @param string     $date_created The form post's post_date.
	 */
	public static function form_directory( $form_id, string $date_created ): string {
		return absint( $form_id ) . '-' . md5( $form_id . $date_created );
	}

	/**
	 * Store one file (WPForms\Pro\Helpers\Upload::process_file()).
	 *
	 * @param array      $file                Uploaded file (name, type, tmp_name, size).
	 * @param int|string $field_id            Field id.
	 * @param array      $form_data           Form data (with 'created').
	 * @param bool       $is_media_integrated Store in the media library.
	 *
	 * @return array file_name, file_name_new, file_ext, attachment_id, file_url; empty on failure.
	 */
	public function process_file( array $file, $field_id, array $form_data, bool $is_media_integrated ): array {
		$file_name     = sanitize_file_name( $file['name'] );
		$file_ext      = pathinfo( $file_name, PATHINFO_EXTENSION );
		$file_base     = mb_substr( wp_basename( $file_name, '.' . $file_ext ), 0, 64, 'UTF-8' );
		$file_name_new = sprintf( '%s-%s.%s', $file_base, wp_hash( wp_rand() . microtime() . $form_data['id'] . $field_id ), strtolower( $file_ext ) );

		$details = array(
			'file_name'     => $file_name,
			'file_name_new' => $file_name_new,
			'file_ext'      => $file_ext,
		);
		return $is_media_integrated
			? $this->store_in_media_library( $details, $file, $field_id, $form_data )
			: $this->store_in_wpforms_folder( $details, $file, $form_data );
	}

	/**
	 * Store under <uploads>/wpforms/{form_id}-{hash}/.
	 *
	 * @param array $details   File details so far.
	 * @param array $file      Uploaded file.
	 * @param array $form_data Form data.
	 */
	private function store_in_wpforms_folder( array $details, array $file, array $form_data ): array {
		$upload_dir = wpforms_upload_dir();
		if ( ! empty( $upload_dir['error'] ) ) {
			return array();
		}
		$form_directory = self::form_directory( $form_data['id'], (string) $form_data['created'] );
		$form_path      = wp_normalize_path( trailingslashit( $upload_dir['path'] ) . $form_directory );
		if ( ! file_exists( $form_path ) ) {
			wp_mkdir_p( $form_path );
		}
		self::protect_folder( $upload_dir['path'] );
		self::index_html( $form_path );

		$file_new = trailingslashit( $form_path ) . $details['file_name_new'];
		$file_url = trailingslashit( $upload_dir['url'] ) . trailingslashit( $form_directory ) . $details['file_name_new'];

		// phpcs:ignore WordPress.PHP.NoSilencedErrors.Discouraged, Generic.PHP.ForbiddenFunctions.Found
		if ( ! @move_uploaded_file( $file['tmp_name'], $file_new ) ) {
			return array();
		}
		$stat = stat( dirname( $file_new ) );
		// phpcs:ignore WordPress.PHP.NoSilencedErrors.Discouraged
		@chmod( $file_new, $stat['mode'] & 0000666 );

		return array_merge(
			$details,
			array(
				'attachment_id' => '0',
				'upload_path'   => $form_path,
				'file_url'      => $file_url,
			)
		);
	}

	/**
	 * Store in the media library: sideloaded into uploads/YYYY/MM as an attachment.
	 *
	 * @param array      $details   File details so far.
	 * @param array      $file      Uploaded file.
	 * @param int|string $field_id  Field id.
	 * @param array      $form_data Form data.
	 */
	private function store_in_media_library( array $details, array $file, $field_id, array $form_data ): array {
		require_once ABSPATH . 'wp-admin/includes/media.php';
		require_once ABSPATH . 'wp-admin/includes/file.php';
		require_once ABSPATH . 'wp-admin/includes/image.php';

		$file_args = array(
			'error'    => '',
			'tmp_name' => $file['tmp_name'],
			'name'     => $details['file_name_new'],
			'type'     => $file['type'],
			'size'     => $file['size'],
		);
		$upload    = wp_handle_sideload( $file_args, array( 'test_form' => false ) );
		if ( empty( $upload['file'] ) ) {
			return array();
		}
		$settings      = (array) ( $form_data['fields'][ $field_id ] ?? array() );
		$attachment_id = wp_insert_attachment(
			array(
				'post_title'     => sprintf( '%s: %s', $settings['label'] ?? '', sanitize_file_name( pathinfo( $file['name'], PATHINFO_FILENAME ) ) ),
				'post_name'      => $file['name'],
				'post_content'   => $settings['description'] ?? '',
				'post_status'    => 'publish',
				'post_mime_type' => $file['type'],
			),
			$upload['file']
		);
		if ( empty( $attachment_id ) || is_wp_error( $attachment_id ) ) {
			return array();
		}
		wp_update_attachment_metadata( $attachment_id, wp_generate_attachment_metadata( $attachment_id, $upload['file'] ) );

		$details['attachment_id'] = $attachment_id;
		$details['file_url']      = wp_get_attachment_url( $attachment_id );
		$details['file_name_new'] = wp_basename( $details['file_url'] );
		$details['upload_path']   = wp_normalize_path( trailingslashit( dirname( get_attached_file( $attachment_id ) ) ) );
		return $details;
	}

	/**
	 * WPForms' upload root gets an .htaccess that stops script execution, and an index.html.
	 *
	 * @param string $root The wpforms upload root.
	 */
	private static function protect_folder( string $root ): void {
		$htaccess = trailingslashit( $root ) . '.htaccess';
		if ( ! file_exists( $htaccess ) ) {
			// phpcs:ignore WordPress.WP.AlternativeFunctions.file_system_operations_file_put_contents
			file_put_contents(
				$htaccess,
				"# Disable PHP and Python scripts parsing.\n<Files *>\n  SetHandler none\n  SetHandler default-handler\n  RemoveHandler .cgi .php .php3 .php4 .php5 .phtml .pl .py .pyc .pyo\n  RemoveType .cgi .php .php3 .php4 .php5 .phtml .pl .py .pyc .pyo\n</Files>\n<IfModule mod_php5.c>\n  php_flag engine off\n</IfModule>\n<IfModule mod_php7.c>\n  php_flag engine off\n</IfModule>\n<IfModule mod_php.c>\n  php_flag engine off\n</IfModule>\n"
			);
		}
		self::index_html( $root );
	}

	/**
	 * An empty index.html, so the folder does not list its files.
	 *
	 * @param string $dir Folder.
	 */
	private static function index_html( string $dir ): void {
		$index = trailingslashit( $dir ) . 'index.html';
		if ( ! file_exists( $index ) ) {
			// phpcs:ignore WordPress.WP.AlternativeFunctions.file_system_operations_file_put_contents
			file_put_contents( $index, '' );
		}
	}

	/**
	 * Delete the files of a stored entry's fields (WPForms deletes them with the entry).
	 *
	 * @param array $fields  The entry's decoded fields.
	 * @param int   $form_id Form id.
	 */
	public static function delete_files( array $fields, int $form_id ): void {
		$form = WPForms_Emulator_Forms::get( $form_id );
		$dir  = wpforms_upload_dir();
		foreach ( $fields as $field ) {
			if ( ! is_array( $field ) || 'file-upload' !== ( $field['type'] ?? '' ) ) {
				continue;
			}
			$files = is_array( $field['value_raw'] ?? null ) ? $field['value_raw'] : array( $field );
			foreach ( $files as $file ) {
				if ( ! empty( $file['attachment_id'] ) ) {
					wp_delete_attachment( absint( $file['attachment_id'] ), true );
					continue;
				}
				if ( empty( $file['file'] ) || ! $form || ! empty( $dir['error'] ) ) {
					continue;
				}
				$path = trailingslashit( $dir['path'] ) . self::form_directory( $form_id, $form->post_date ) . '/' . wp_basename( $file['file'] );
				if ( is_file( $path ) ) {
					wp_delete_file( $path );
				}
			}
		}
	}
}
